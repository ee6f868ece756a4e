"""FHIR rest-hook subscriptions: channel.payload and channel.header

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-24 23:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fhir_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.String(length=60), nullable=True))
        batch_op.add_column(
            sa.Column(
                "headers",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )
    # Existing subscriptions had no payload: R4 sends them an empty notification.
    with op.batch_alter_table("fhir_subscription", schema=None) as batch_op:
        batch_op.alter_column("headers", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("fhir_subscription", schema=None) as batch_op:
        batch_op.drop_column("headers")
        batch_op.drop_column("payload")
