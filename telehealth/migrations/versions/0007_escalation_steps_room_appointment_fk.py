"""escalation steps of unanswered requests; room.appointment_id references appointment

Revision ID: 0007
Revises: 0009
Create Date: 2026-11-24 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telehealth.db

revision: str = "0007"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consult_escalation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("round_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("target_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("practitioner_role_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["practitioner_role_id"], ["practitioner_role.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["consult_request.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "round_at", "level", name="uq_consult_escalation_step"),
    )
    with op.batch_alter_table("consult_escalation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consult_escalation_request_id"), ["request_id"], unique=False
        )
    with op.batch_alter_table("room", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_room_appointment_id", "appointment", ["appointment_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("room", schema=None) as batch_op:
        batch_op.drop_constraint("fk_room_appointment_id", type_="foreignkey")
    with op.batch_alter_table("consult_escalation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consult_escalation_request_id"))
    op.drop_table("consult_escalation")
