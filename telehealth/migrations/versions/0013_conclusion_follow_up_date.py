"""the follow-up day of a consult conclusion

Revision ID: 0013
Revises: 0008
Create Date: 2026-11-24 23:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consult_conclusion") as batch_op:
        batch_op.add_column(sa.Column("follow_up_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consult_conclusion") as batch_op:
        batch_op.drop_column("follow_up_on")
