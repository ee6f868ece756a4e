"""one general (no-specialty) role per practitioner and facility

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-24 20:45:00

The unique constraint on (practitioner, organization, specialty) lets NULL specialties repeat,
so two racing requests could both add a general-practice role; a partial unique index closes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_practitioner_role_general",
        "practitioner_role",
        ["practitioner_id", "organization_id"],
        unique=True,
        postgresql_where=sa.text("specialty_id IS NULL"),
        sqlite_where=sa.text("specialty_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_practitioner_role_general", table_name="practitioner_role")
