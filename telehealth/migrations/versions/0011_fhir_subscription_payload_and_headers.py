"""FHIR rest-hook subscriptions: channel.payload and channel.header; search values ordered
by their resource's last update

Revision ID: 0011
Revises: 0012
Create Date: 2026-11-24 23:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import telehealth.db

revision: str = "0011"
down_revision: str | None = "0012"
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

    with op.batch_alter_table("fhir_search_value", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_updated", telehealth.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE fhir_search_value SET last_updated = (SELECT r.last_updated FROM fhir_resource r"
        " WHERE r.resource_type = fhir_search_value.resource_type"
        " AND r.resource_id = fhir_search_value.resource_id)"
    )
    op.execute("DELETE FROM fhir_search_value WHERE last_updated IS NULL")  # no resource
    with op.batch_alter_table("fhir_search_value", schema=None) as batch_op:
        batch_op.alter_column(
            "last_updated", existing_type=telehealth.db.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.drop_index("ix_fhir_search_lookup")
        batch_op.create_index(
            "ix_fhir_search_ordered",
            ["resource_type", "param", "value", "last_updated", "resource_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("fhir_search_value", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_search_ordered")
        batch_op.create_index(
            "ix_fhir_search_lookup",
            ["resource_type", "param", "value", "resource_id"],
            unique=False,
        )
        batch_op.drop_column("last_updated")
    with op.batch_alter_table("fhir_subscription", schema=None) as batch_op:
        batch_op.drop_column("headers")
        batch_op.drop_column("payload")
