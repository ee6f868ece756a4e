"""initial schema: the whole service's tables, and the specialties offered for consults

This squashes the chain that ended at 0022, made before any production database existed, and
builds the schema that chain built, on SQLite and PostgreSQL alike. Besides the tables:

- no overlapping busy time for one practitioner, enforced by the database. PostgreSQL: an
  exclusion constraint over tstzrange(starts_at, ends_at) with btree_gist (the extension must
  be installable by the migrating user). SQLite: triggers that abort an insert or update
  creating an overlap; SQLite serialises writers, so the check cannot race;
- on PostgreSQL, ``audit_chain_tail()``: the audit chain's lock, and then its newest link.

Revision ID: 0001
Revises:
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from telehealth.db import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Specialties offered for consults: SNOMED CT practice-setting codes (FHIR c80-practice-codes).
SPECIALTIES = [
    ("394579002", "Tim mạch", "Cardiology"),
    ("394537008", "Nhi khoa", "Paediatrics"),
    ("394585009", "Sản phụ khoa", "Obstetrics and gynaecology"),
    ("394582007", "Da liễu", "Dermatology"),
    ("419192003", "Nội khoa", "Internal medicine"),
    ("394609007", "Ngoại tổng quát", "General surgery"),
    ("394914008", "Chẩn đoán hình ảnh", "Radiology"),
    ("394915009", "Giải phẫu bệnh", "Pathology"),
    ("394591006", "Thần kinh", "Neurology"),
    ("394594003", "Nhãn khoa", "Ophthalmology"),
    ("418960008", "Tai mũi họng", "Otolaryngology"),
    ("394587001", "Tâm thần", "Psychiatry"),
    ("394801008", "Chấn thương chỉnh hình", "Trauma and orthopaedics"),
    ("394807007", "Truyền nhiễm", "Infectious diseases"),
    ("773568002", "Cấp cứu", "Emergency medicine"),
    ("394583002", "Nội tiết", "Endocrinology"),
    ("394584008", "Tiêu hóa", "Gastroenterology"),
    ("418112009", "Hô hấp", "Respiratory medicine"),
    ("394589003", "Thận - tiết niệu", "Nephrology"),
    ("394592004", "Ung bướu", "Clinical oncology"),
    ("408443003", "Y học đa khoa", "General medical practice"),
]

# Every table, in the order upgrade() makes them: each after the tables it refers to.
TABLES = (
    "organization",
    "practitioner",
    "specialty",
    "patient",
    "practitioner_role",
    "system_client",
    "user_account",
    "refresh_token",
    "password_history",
    "login_throttle",
    "audit_event",
    "audit_checkpoint",
    "idempotency_key",
    "webhook_subscription",
    "notification",
    "timer",
    "fhir_resource",
    "fhir_resource_version",
    "fhir_search_value",
    "fhir_subscription",
    "availability_rule",
    "availability_exception",
    "consult_request",
    "slot",
    "appointment",
    "consult_transition",
    "consult_attachment",
    "consult_escalation",
    "consult_conclusion",
    "consult_diagnosis",
    "patient_consent",
    "channel_spill",
    "room",
    "room_participant",
    "session_event",
    "recording",
    "relay_lease",
)

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
CONSULT_STATUSES = (
    "draft",
    "requested",
    "accepted",
    "scheduled",
    "in_progress",
    "completed",
    "declined",
    "cancelled",
    "expired",
)
GENDERS = ("male", "female", "other", "unknown")
NOT_CANCELLED = sa.text("status <> 'cancelled'")
WITHDRAWN = sa.text("withdrawn_at IS NULL")
GENERAL = sa.text("specialty_id IS NULL")


# Takes the chain's lock (held to the end of the transaction), then reads the newest link.
# VOLATILE: its query gets a snapshot taken after the lock was granted, so it sees the rows
# the previous holder committed (a single SELECT would not: its snapshot predates the wait).
AUDIT_CHAIN_TAIL = """
CREATE FUNCTION audit_chain_tail(OUT seq bigint, OUT hash varchar) LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1635083369);  -- 'audi': the audit chain's lock
    SELECT e.seq, e.hash INTO seq, hash FROM audit_event e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT c.seq, c.hash INTO seq, hash FROM audit_checkpoint c ORDER BY c.seq DESC LIMIT 1;
    END IF;
END
$$
"""


# Column shorthands: every column is NOT NULL unless it says otherwise.
def key(name: str = "id") -> sa.Column[Any]:
    return sa.Column(name, sa.Uuid(), primary_key=True)


def ref(name: str, target: str, *, null: bool = False, index: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Uuid(), sa.ForeignKey(target), nullable=null, index=index)


def uid(name: str, *, null: bool = False, index: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Uuid(), nullable=null, index=index)


def string(
    name: str, length: int | None, *, null: bool = False, unique: bool = False, index: bool = False
) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=null, unique=unique, index=index)


def moment(name: str, *, null: bool = False, index: bool = False) -> sa.Column[Any]:
    return sa.Column(name, UTCDateTime(timezone=True), nullable=null, index=index)


def column(name: str, type_: Any, *, null: bool = False, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=null, **kw)


def choice(
    name: str, enum: str, length: int, values: Sequence[str], *, index: bool = False
) -> sa.Column[Any]:
    """An enumeration stored as VARCHAR (never a PostgreSQL type): adding a value is no DDL."""
    kind = sa.Enum(*values, name=enum, native_enum=False, length=length)
    return sa.Column(name, kind, nullable=False, index=index)


def stamps() -> list[sa.Column[Any]]:
    return [moment("created_at"), moment("updated_at")]


def upgrade() -> None:
    _directory()
    _accounts_and_audit()
    _notifications_and_timers()
    _fhir_store()
    _consults()
    _video_sessions()


def _directory() -> None:
    op.create_table(
        "organization",
        key(),
        *stamps(),
        string("name", 200),
        string("name_folded", 200, index=True),
        choice(
            "level",
            "facilitylevel",
            16,
            ("central", "provincial", "district", "commune"),
            index=True,
        ),
        ref("parent_id", "organization.id", null=True, index=True),
        string("moh_code", 16, unique=True),
        string("admin_unit_code", 8, null=True),
        string("address", 300, null=True),
        string("phone", 20, null=True),
        column("active", sa.Boolean()),
    )
    op.create_table(
        "practitioner",
        key(),
        *stamps(),
        string("full_name", 120),
        string("name_folded", 120, index=True),
        string("licence_number", 32, null=True, unique=True),
        choice("gender", "gender", 16, GENDERS),
        string("phone", 20, null=True),
        string("email", 200, null=True),
        column("active", sa.Boolean()),
    )
    specialty = op.create_table(
        "specialty",
        key(),
        *stamps(),
        string("code", 32, unique=True),
        string("name_vi", 120),
        string("name_en", 120),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        specialty,
        [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"http://snomed.info/sct|{code}"),
                "code": code,
                "name_vi": vi,
                "name_en": en,
                "created_at": now,
                "updated_at": now,
            }
            for code, vi, en in SPECIALTIES
        ],
    )
    op.create_table(
        "patient",
        key(),
        *stamps(),
        string("full_name", 120),
        string("name_folded", 120, index=True),
        choice("gender", "gender", 16, GENDERS),
        column("birth_date", sa.Date()),
        string("national_id", 12, null=True, unique=True),
        string("insurance_number", 15, null=True, unique=True),
        string("phone", 20, null=True),
        string("address", 300, null=True),
        string("admin_unit_code", 8, null=True),
        ref("organization_id", "organization.id", index=True),
        sa.Index("ix_patient_org_name", "organization_id", "name_folded"),
    )
    op.create_table(
        "practitioner_role",
        key(),
        *stamps(),
        ref("practitioner_id", "practitioner.id", index=True),
        ref("organization_id", "organization.id", index=True),
        ref("specialty_id", "specialty.id", null=True, index=True),
        column("active", sa.Boolean()),
        sa.UniqueConstraint("practitioner_id", "organization_id", "specialty_id"),
        # The constraint above lets NULL specialties repeat: one general role per facility.
        sa.Index(
            "uq_practitioner_role_general",
            "practitioner_id",
            "organization_id",
            unique=True,
            postgresql_where=GENERAL,
            sqlite_where=GENERAL,
        ),
    )


def _accounts_and_audit() -> None:
    op.create_table(
        "system_client",
        key(),
        *stamps(),
        string("client_id", 64, unique=True),
        string("secret_hash", 200),
        string("name", 120),
        string("scopes", 2000),
        ref("organization_id", "organization.id", null=True),
        column("active", sa.Boolean()),
    )
    op.create_table(
        "user_account",
        key(),
        *stamps(),
        string("username", 64, unique=True),
        string("password_hash", 200),
        string("display_name", 120),
        choice("role", "role", 16, ("requester", "specialist", "coordinator", "administrator")),
        ref("organization_id", "organization.id", index=True),
        ref("practitioner_id", "practitioner.id", null=True),
        string("language", 2),
        string("email", 200, null=True),
        column("active", sa.Boolean()),
        moment("locked_until", null=True),
        moment("password_changed_at"),
        moment("sessions_reset_at", null=True),  # access tokens issued before it are refused
        column("must_change_password", sa.Boolean(), server_default=sa.false()),
        moment("last_active_at", null=True),
    )
    op.create_table(
        "refresh_token",
        key(),
        string("token_hash", 64, unique=True),
        ref("user_id", "user_account.id", index=True),
        moment("expires_at"),
        moment("revoked_at", null=True),
        moment("created_at"),
    )
    op.create_table(
        "password_history",
        key(),
        ref("user_id", "user_account.id", index=True),
        string("password_hash", 200),
        moment("replaced_at"),
    )
    op.create_table(  # failed logins by source address and by (name, address)
        "login_throttle",
        sa.Column("key", sa.String(140), primary_key=True),
        string("address", 64),
        string("username", 64, null=True, index=True),
        column("failures", sa.Integer()),
        moment("last_failure_at"),
        moment("locked_until", null=True),
    )
    op.create_table(
        "audit_event",
        key(),
        moment("recorded_at"),
        string("actor_kind", 16),
        string("actor_id", 64, null=True, index=True),
        string("actor_name", 120, null=True),
        string("action", 32),
        string("entity_type", 40),
        string("entity_id", 64, null=True),
        uid("patient_id", null=True),
        choice("outcome", "auditoutcome", 8, ("success", "denied", "failed")),
        string("ip", 64, null=True),
        string("user_agent", 300, null=True),
        string("request_id", 40, null=True),
        string("detail", 500, null=True),
        # The hash chain (telehealth/auth/audit_chain.py): each row hashes the one before.
        column("seq", sa.BigInteger()),
        string("prev_hash", 64),
        string("hash", 64),
        sa.Index("ix_audit_event_patient", "patient_id", "recorded_at"),
        sa.Index("ix_audit_event_recorded", "recorded_at"),
        sa.Index("ux_audit_event_seq", "seq", unique=True),
    )
    op.create_table(  # where the chain resumes after old rows were pruned
        "audit_checkpoint",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        string("hash", 64),
        moment("pruned_at"),
        column("pruned_rows", sa.BigInteger()),
        moment("recorded_before"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(AUDIT_CHAIN_TAIL)
    op.create_table(  # the first answer to a creating request, per account and key
        "idempotency_key",
        key("owner_id"),
        sa.Column("key", sa.String(255), primary_key=True),
        string("request_hash", 64),
        column("status_code", sa.Integer(), null=True),
        column("body", sa.Text(), null=True),
        moment("created_at"),
        moment("expires_at", index=True),
    )


def _notifications_and_timers() -> None:
    op.create_table(
        "webhook_subscription",
        key(),
        string("name", 120),
        string("url", 500),
        string("secret", 200),
        column("kinds", JSON),
        column("active", sa.Boolean()),
        moment("created_at"),
    )
    op.create_table(
        "notification",
        key(),
        uid("recipient_id", null=True),
        string("address", 500, null=True),
        choice("channel", "channel", 16, ("in_app", "email", "webhook")),
        string("kind", 40),
        uid("subject_id", null=True, index=True),
        column("params", JSON),
        choice("state", "deliverystate", 12, ("pending", "sent", "failed", "dead", "cancelled")),
        column("attempts", sa.Integer()),
        moment("next_attempt_at"),
        string("last_error", 2000, null=True),
        moment("created_at"),
        moment("sent_at", null=True),
        moment("read_at", null=True),
        moment("lease_until", null=True),
        string("claimed_by", 64, null=True),
        sa.Column(
            "subscription_id",
            sa.Uuid(),
            sa.ForeignKey("webhook_subscription.id", name="fk_notification_subscription_id"),
            nullable=True,
            index=True,
        ),
        sa.Index("ix_notification_due", "state", "next_attempt_at"),
        sa.Index("ix_notification_recipient", "recipient_id", "created_at"),
    )
    op.create_table(
        "timer",
        key(),
        string("kind", 40),
        uid("subject_id", index=True),
        moment("due_at"),
        choice("state", "timerstate", 12, ("pending", "running", "done", "cancelled", "dead")),
        column("attempts", sa.Integer()),
        moment("lease_until", null=True),
        string("claimed_by", 64, null=True),
        string("last_error", 2000, null=True),
        column("payload", JSON),
        moment("created_at"),
        moment("fired_at", null=True),
        sa.Index("ix_timer_due", "state", "due_at"),
    )


def _fhir_store() -> None:
    """Each resource's current version, its history, and the values searches look up."""
    op.create_table(
        "fhir_resource",
        sa.Column("resource_type", sa.String(40), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        column("version_id", sa.Integer()),
        moment("last_updated"),
        column("deleted", sa.Boolean()),
        column("text", sa.Text()),
        # Ties on last_updated (every resource one transaction writes) are broken by id, so a
        # page of a search that no single value drives is read in order, not sorted.
        sa.Index(
            "ix_fhir_resource_type_updated_id", "resource_type", "last_updated", "resource_id"
        ),
    )
    op.create_table(
        "fhir_resource_version",
        sa.Column("resource_type", sa.String(40), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer(), primary_key=True, autoincrement=False),
        moment("last_updated"),
        column("deleted", sa.Boolean()),
        column("text", sa.Text()),
        sa.Index("ix_fhir_version_type_updated", "resource_type", "last_updated"),
    )
    op.create_table(
        "fhir_search_value",
        sa.Column("id", sa.Integer(), primary_key=True),
        string("resource_type", 40),
        string("resource_id", 64),
        string("param", 40),
        string("system", 200),
        column(
            "value",
            # byte-wise on PostgreSQL: prefix ranges match what they match on SQLite
            sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql"),
        ),
        moment("last_updated"),  # its resource's, to page matches in the search order
        sa.Index(
            "ix_fhir_search_ordered",
            "resource_type",
            "param",
            "value",
            "last_updated",
            "resource_id",
        ),
        sa.Index("ix_fhir_search_resource", "resource_type", "resource_id"),
    )
    op.create_table(  # FHIR rest-hook subscriptions, delivered as webhooks
        "fhir_subscription",
        sa.Column("id", sa.Uuid(), sa.ForeignKey("webhook_subscription.id"), primary_key=True),
        string("client_id", 120),
        string("resource_type", 40, index=True),
        string("criteria", 500),
        string("endpoint", 500),
        string("reason", 500),
        string("status", 12),
        *stamps(),
        column("payload", sa.String(60), null=True),
        column("headers", JSON),
    )


def _consults() -> None:
    """Availability, consult requests and their steps, slots, appointments, conclusions."""
    op.create_table(
        "availability_rule",
        key(),
        *stamps(),
        ref("practitioner_role_id", "practitioner_role.id", index=True),
        column("weekday", sa.Integer()),
        column("start_time", sa.Time()),
        column("end_time", sa.Time()),
        column("slot_minutes", sa.Integer()),
        column("valid_from", sa.Date(), null=True),
        column("valid_until", sa.Date(), null=True),
        string("timezone", 40),
        uid("created_by", null=True),
    )
    op.create_table(
        "availability_exception",
        key(),
        *stamps(),
        ref("practitioner_role_id", "practitioner_role.id", index=True),
        choice("kind", "exceptionkind", 16, ("unavailable", "extra")),
        moment("starts_at"),
        moment("ends_at"),
        column("slot_minutes", sa.Integer(), null=True),
        string("reason", 300, null=True),
        uid("created_by", null=True),
    )
    op.create_table(
        "consult_request",
        key(),
        *stamps(),
        ref("patient_id", "patient.id", index=True),
        ref("requesting_organization_id", "organization.id"),
        ref("requester_id", "user_account.id"),
        choice(
            "activity_type",
            "activitytype",
            16,
            ("tele_advice", "exam_treatment", "imaging", "pathology", "surgery", "training"),
        ),
        ref("specialty_id", "specialty.id"),
        ref("target_organization_id", "organization.id", null=True),
        choice("priority", "priority", 10, ("routine", "urgent", "emergency")),
        column("priority_rank", sa.Integer()),
        string("reason", 500),
        string("clinical_summary", 4000),
        column("diagnoses", JSON),
        column("vital_signs", JSON),
        choice("status", "consultstatus", 16, CONSULT_STATUSES),
        ref("assigned_role_id", "practitioner_role.id", null=True),
        ref("assigned_practitioner_id", "practitioner.id", null=True, index=True),
        moment("submitted_at", null=True),
        moment("accepted_at", null=True),
        string("status_reason", 500, null=True),
        sa.Index("ix_consult_queue", "status", "specialty_id", "priority_rank", "submitted_at"),
        sa.Index("ix_consult_requesting_org", "requesting_organization_id", "created_at"),
    )
    op.create_table(
        "slot",
        key(),
        *stamps(),
        ref("practitioner_role_id", "practitioner_role.id"),
        ref("practitioner_id", "practitioner.id"),
        ref("organization_id", "organization.id", index=True),
        ref("specialty_id", "specialty.id"),
        moment("starts_at"),
        moment("ends_at"),
        choice("status", "slotstatus", 8, ("free", "held", "booked")),
        moment("hold_until", null=True),
        uid("held_by", null=True),
        uid("held_for_request_id", null=True),
        sa.UniqueConstraint("practitioner_role_id", "starts_at", name="uq_slot_role_start"),
        sa.Index("ix_slot_practitioner", "practitioner_id", "starts_at"),
        sa.Index("ix_slot_search", "specialty_id", "status", "starts_at"),
        # A hold is for one consult request, and a request holds one slot.
        sa.Index("uq_slot_held_for_request", "held_for_request_id", unique=True),
    )
    op.create_table(
        "appointment",
        key(),
        *stamps(),
        ref("request_id", "consult_request.id", index=True),
        ref("slot_id", "slot.id"),
        ref("patient_id", "patient.id", index=True),
        ref("practitioner_id", "practitioner.id"),
        ref("practitioner_role_id", "practitioner_role.id"),
        moment("starts_at"),
        moment("ends_at"),
        choice(
            "status",
            "appointmentstatus",
            12,
            ("booked", "in_progress", "completed", "no_show", "cancelled"),
        ),
        uid("booked_by", null=True),
        string("status_reason", 500, null=True),
        sa.Index("ix_appointment_practitioner", "practitioner_id", "starts_at"),
        sa.Index(
            "uq_appointment_active_slot",
            "slot_id",
            unique=True,
            postgresql_where=NOT_CANCELLED,
            sqlite_where=NOT_CANCELLED,
        ),
    )
    _create_overlap_guard()
    op.create_table(
        "consult_transition",
        key(),
        ref("request_id", "consult_request.id"),
        string("action", 24),
        choice("from_status", "consultstatus", 16, CONSULT_STATUSES),
        choice("to_status", "consultstatus", 16, CONSULT_STATUSES),
        string("actor_kind", 16),
        uid("actor_id", null=True),
        string("actor_name", 120, null=True),
        string("reason", 500, null=True),
        moment("at"),
        sa.Index("ix_consult_transition_request", "request_id", "at"),
    )
    op.create_table(
        "consult_attachment",
        key(),
        ref("request_id", "consult_request.id", index=True),
        string("filename", 120),
        string("media_type", 40),
        column("size", sa.Integer()),
        string("sha256", 64),
        string("storage_key", 64, unique=True),
        uid("uploaded_by"),
        moment("created_at"),
    )
    op.create_table(  # the steps taken on an unanswered request, each once
        "consult_escalation",
        key(),
        ref("request_id", "consult_request.id", index=True),
        moment("round_at"),
        column("level", sa.Integer()),
        string("target_kind", 16),
        ref("practitioner_role_id", "practitioner_role.id", null=True),
        ref("user_id", "user_account.id", null=True),
        string("reason", 500),
        moment("at"),
        sa.UniqueConstraint("request_id", "round_at", "level", name="uq_consult_escalation_step"),
    )
    op.create_table(
        "consult_conclusion",
        key(),
        ref("appointment_id", "appointment.id"),
        ref("request_id", "consult_request.id", index=True),
        ref("patient_id", "patient.id", index=True),
        ref("practitioner_id", "practitioner.id"),
        choice("recommendation", "recommendation", 16, ("treat_locally", "transfer", "follow_up")),
        string("advice", 4000),
        moment("session_started_at", null=True),
        moment("session_ended_at", null=True),
        ref("recorded_by", "user_account.id"),
        moment("created_at"),
        column("follow_up_on", sa.Date(), null=True),
        sa.UniqueConstraint("appointment_id"),
    )
    op.create_table(
        "consult_diagnosis",
        key(),
        ref("conclusion_id", "consult_conclusion.id", index=True),
        ref("request_id", "consult_request.id"),
        ref("patient_id", "patient.id", index=True),
        column("rank", sa.Integer()),
        string("code", 10),
        string("display", 300),
        moment("created_at"),
    )
    op.create_table(  # the patient's consent per purpose, withdrawn but never deleted
        "patient_consent",
        key(),
        *stamps(),
        ref("patient_id", "patient.id", index=True),
        choice(
            "purpose",
            "consentpurpose",
            24,
            ("remote_consultation", "session_recording", "record_sharing"),
        ),
        choice(
            "method",
            "consentmethod",
            24,
            ("signed_paper", "spoken_before_witness", "electronic"),
        ),
        ref("scan_attachment_id", "consult_attachment.id", null=True),
        string("witness_name", 120, null=True),
        ref("request_id", "consult_request.id", null=True),
        ref("recorded_by", "user_account.id"),
        moment("recorded_at"),
        moment("withdrawn_at", null=True),
        ref("withdrawn_by", "user_account.id", null=True),
        string("withdrawal_reason", 500, null=True),
        sa.Index(
            "uq_patient_consent_active",
            "patient_id",
            "purpose",
            unique=True,
            postgresql_where=WITHDRAWN,
            sqlite_where=WITHDRAWN,
        ),
    )


def _create_overlap_guard() -> None:
    """No two live appointments of one practitioner overlap (see the module docstring)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE appointment ADD CONSTRAINT ex_appointment_practitioner_overlap "
            "EXCLUDE USING gist (practitioner_id WITH =, "
            "tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (status <> 'cancelled')"
        )
        return
    check = """
        WHEN NEW.status <> 'cancelled'
        BEGIN
            SELECT RAISE(ABORT, 'appointment overlaps another of the practitioner')
            WHERE EXISTS (
                SELECT 1 FROM appointment
                WHERE practitioner_id = NEW.practitioner_id
                  AND id <> NEW.id
                  AND status <> 'cancelled'
                  AND starts_at < NEW.ends_at
                  AND ends_at > NEW.starts_at
            );
        END"""
    op.execute(f"CREATE TRIGGER tg_appointment_overlap_insert BEFORE INSERT ON appointment {check}")
    op.execute(
        "CREATE TRIGGER tg_appointment_overlap_update BEFORE UPDATE OF "
        f"practitioner_id, starts_at, ends_at, status ON appointment {check}"
    )


def _video_sessions() -> None:
    """Rooms, their participants and events, recordings, the relay lease, channel spill."""
    op.create_table(  # messages too large for a PostgreSQL NOTIFY, read back by id
        "channel_spill",
        sa.Column("id", sa.Integer(), primary_key=True),
        string("channel", 63),
        string("payload", None),
        moment("created_at", index=True),
    )
    op.create_table(
        "room",
        key(),
        *stamps(),
        sa.Column(
            "appointment_id",
            sa.Uuid(),
            sa.ForeignKey("appointment.id", name="fk_room_appointment_id"),
            nullable=False,
            unique=True,
        ),
        choice("state", "roomstate", 12, ("scheduled", "open", "active", "ended")),
        moment("starts_at"),
        moment("ends_at"),
        moment("opens_at"),
        moment("closes_at"),
        moment("opened_at", null=True),
        moment("ended_at", null=True),
    )
    op.create_table(
        "room_participant",
        key(),
        ref("room_id", "room.id", index=True),
        ref("user_id", "user_account.id", index=True),
        choice("role", "participantrole", 12, ("requester", "specialist", "invited")),
        ref("added_by", "user_account.id", null=True),
        moment("consented_at", null=True),
        string("connection_id", 32, null=True),
        moment("connected_at", null=True),
        moment("created_at"),
        sa.UniqueConstraint("room_id", "user_id"),
    )
    op.create_table(
        "session_event",
        key(),
        ref("room_id", "room.id"),
        ref("user_id", "user_account.id", null=True),
        choice(
            "kind",
            "sessioneventkind",
            20,
            (
                "join",
                "leave",
                "reconnect",
                "media_mode",
                "mute",
                "consent",
                "recording_start",
                "recording_stop",
                "quality",
                "precall",
            ),
        ),
        moment("at"),
        column("detail", JSON),
        sa.Index("ix_session_event_room", "room_id", "at"),
    )
    op.create_table(
        "recording",
        key(),
        ref("room_id", "room.id", index=True),
        ref("user_id", "user_account.id"),
        string("path", 300),
        moment("started_at"),
        moment("stopped_at", null=True),
        column("size_bytes", sa.Integer(), null=True),
    )
    op.create_table(  # the one process hosting each room's media relay
        "relay_lease",
        sa.Column("room_id", sa.Uuid(), sa.ForeignKey("room.id"), primary_key=True),
        string("owner", 64),
        moment("expires_at"),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes, triggers and constraints. The btree_gist extension
    # stays: it belongs to the database, and other objects may use it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_chain_tail()")
    for table in reversed(TABLES):
        op.drop_table(table)
