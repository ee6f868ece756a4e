"""consult conclusions and diagnoses; FHIR rest-hook subscriptions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 21:09:19.300668
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telehealth.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consult_conclusion",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column(
            "recommendation",
            sa.Enum(
                "treat_locally",
                "transfer",
                "follow_up",
                name="recommendation",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("advice", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("session_started_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("session_ended_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consult_request.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appointment_id"),
    )
    with op.batch_alter_table("consult_conclusion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consult_conclusion_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consult_conclusion_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "consult_diagnosis",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conclusion_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("display", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conclusion_id"],
            ["consult_conclusion.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consult_request.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consult_diagnosis", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consult_diagnosis_conclusion_id"), ["conclusion_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consult_diagnosis_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "fhir_subscription",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("resource_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("criteria", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("endpoint", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["webhook_subscription.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("fhir_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fhir_subscription_resource_type"), ["resource_type"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fhir_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_subscription_resource_type"))
    op.drop_table("fhir_subscription")
    with op.batch_alter_table("consult_diagnosis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consult_diagnosis_patient_id"))
        batch_op.drop_index(batch_op.f("ix_consult_diagnosis_conclusion_id"))

    op.drop_table("consult_diagnosis")
    with op.batch_alter_table("consult_conclusion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consult_conclusion_request_id"))
        batch_op.drop_index(batch_op.f("ix_consult_conclusion_patient_id"))

    op.drop_table("consult_conclusion")
