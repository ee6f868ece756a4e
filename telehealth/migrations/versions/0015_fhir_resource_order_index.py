"""FHIR heads indexed in the order searches page them: (type, last updated, id)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Ties on last_updated (every resource one transaction writes) are broken by id: with the
    # id in the index, a page of a search that no single value drives is read in order, not
    # sorted after reading every resource stamped alike.
    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_resource_type_updated")
        batch_op.create_index(
            "ix_fhir_resource_type_updated_id",
            ["resource_type", "last_updated", "resource_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_resource_type_updated_id")
        batch_op.create_index(
            "ix_fhir_resource_type_updated", ["resource_type", "last_updated"], unique=False
        )
