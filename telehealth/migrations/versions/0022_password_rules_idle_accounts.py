"""Accounts: earlier password hashes (password_history), a forced change after someone else
chose the password (must_change_password), and the last use (last_active_at) by which idle
accounts are disabled

Existing accounts count as used at the upgrade: their last use is unknown, and disabling
them all at the next daily run would shut everyone out.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telehealth.db
from telehealth.timeutil import utcnow

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("replaced_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_history_user_id"), ["user_id"], unique=False)
    # Not in batch mode: on SQLite that copies the table and drops the old one, which the
    # foreign keys to existing accounts (refresh tokens, ...) refuse. Added in place instead,
    # so the flag keeps its server default and the moment stays nullable in the schema.
    op.add_column(
        "user_account",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "user_account",
        sa.Column("last_active_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
    )
    accounts = sa.table(
        "user_account", sa.column("last_active_at", telehealth.db.UTCDateTime(timezone=True))
    )
    op.execute(accounts.update().values(last_active_at=utcnow()))


def downgrade() -> None:
    op.drop_column("user_account", "last_active_at")
    op.drop_column("user_account", "must_change_password")
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_history_user_id"))
    op.drop_table("password_history")
