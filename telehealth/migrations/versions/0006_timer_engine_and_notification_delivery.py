"""timer engine and notification delivery: leases on notifications, webhook subscriptions

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-24 20:10:03.994059
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import telehealth.db

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "kinds",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_until", telehealth.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("subscription_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_notification_subscription_id"), ["subscription_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_notification_subscription_id", "webhook_subscription", ["subscription_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_constraint("fk_notification_subscription_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notification_subscription_id"))
        batch_op.drop_column("subscription_id")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("lease_until")

    op.drop_table("webhook_subscription")
