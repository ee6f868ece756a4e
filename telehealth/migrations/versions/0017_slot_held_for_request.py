"""slot.held_for_request_id: a hold is for one consult request, and a request holds one slot

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-02 10:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Holds made before this revision (for nobody's request) run out within minutes.
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_for_request_id", sa.Uuid(), nullable=True))
        batch_op.create_index("uq_slot_held_for_request", ["held_for_request_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.drop_index("uq_slot_held_for_request")
        batch_op.drop_column("held_for_request_id")
