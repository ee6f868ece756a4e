"""patient_consent: the patient's consent per purpose, withdrawn but never deleted

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-02 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telehealth.db

revision: str = "0021"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("withdrawn_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "patient_consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "remote_consultation",
                "session_recording",
                "record_sharing",
                name="consentpurpose",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "method",
            sa.Enum(
                "signed_paper",
                "spoken_before_witness",
                "electronic",
                name="consentmethod",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("scan_attachment_id", sa.Uuid(), nullable=True),
        sa.Column("witness_name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.Uuid(), nullable=True),
        sa.Column("withdrawal_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["scan_attachment_id"], ["consult_attachment.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["consult_request.id"]),
        sa.ForeignKeyConstraint(["recorded_by"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["withdrawn_by"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patient_consent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patient_consent_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            "uq_patient_consent_active",
            ["patient_id", "purpose"],
            unique=True,
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("patient_consent", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_patient_consent_active", postgresql_where=ACTIVE, sqlite_where=ACTIVE
        )
        batch_op.drop_index(batch_op.f("ix_patient_consent_patient_id"))
    op.drop_table("patient_consent")
