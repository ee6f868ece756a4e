"""Consult requests with their transition log, and appointments in slots.

Two invariants live in the database, not in Python: an appointment that is not cancelled
holds its slot alone (partial unique index ``uq_appointment_active_slot``), and one
practitioner's appointments that are not cancelled never overlap in time (PostgreSQL:
exclusion constraint ``ex_appointment_practitioner_overlap`` over ``tstzrange`` with
btree_gist; SQLite: triggers ``tg_appointment_overlap_*`` that abort the statement, which is
race-free there because writers are serialised by ``BEGIN IMMEDIATE``). Both are created by
migration 0003.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from telehealth.db import PortableJSON, UTCDateTime
from telehealth.models import Entity, enum_type, new_id
from telehealth.timeutil import utcnow


class ActivityType(StrEnum):
    """The six remote activities of Circular 49/2017/TT-BYT, article 3."""

    TELE_ADVICE = "tele_advice"  # tư vấn từ xa
    EXAM_TREATMENT = "exam_treatment"  # hội chẩn khám bệnh, chữa bệnh
    IMAGING = "imaging"  # hội chẩn chẩn đoán hình ảnh
    PATHOLOGY = "pathology"  # hội chẩn giải phẫu bệnh
    SURGERY = "surgery"  # hội chẩn phẫu thuật
    TRAINING = "training"  # đào tạo, chuyển giao kỹ thuật


class Priority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class ConsultStatus(StrEnum):
    DRAFT = "draft"
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class ConsultRequest(Entity, table=True):
    __tablename__ = "consult_request"
    __table_args__ = (
        Index("ix_consult_queue", "status", "specialty_id", "priority_rank", "submitted_at"),
        Index("ix_consult_requesting_org", "requesting_organization_id", "created_at"),
    )

    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    requesting_organization_id: uuid.UUID = Field(foreign_key="organization.id")
    requester_id: uuid.UUID = Field(foreign_key="user_account.id")
    activity_type: ActivityType = Field(sa_type=enum_type(ActivityType))
    specialty_id: uuid.UUID = Field(foreign_key="specialty.id")
    target_organization_id: uuid.UUID | None = Field(
        default=None, foreign_key="organization.id", description="None: any provincial hospital"
    )
    priority: Priority = Field(sa_type=enum_type(Priority, 10))
    priority_rank: int = Field(description="0 emergency, 1 urgent, 2 routine: queue order")
    reason: str = Field(max_length=500)
    clinical_summary: str = Field(max_length=4000)
    diagnoses: list[dict[str, str]] = Field(default_factory=list, sa_type=PortableJSON)
    vital_signs: dict[str, float] = Field(default_factory=dict, sa_type=PortableJSON)
    status: ConsultStatus = Field(default=ConsultStatus.DRAFT, sa_type=enum_type(ConsultStatus))
    assigned_role_id: uuid.UUID | None = Field(default=None, foreign_key="practitioner_role.id")
    assigned_practitioner_id: uuid.UUID | None = Field(
        default=None, foreign_key="practitioner.id", index=True
    )
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_reason: str | None = Field(default=None, max_length=500)


class ConsultTransition(SQLModel, table=True):
    """One named action on a request: who, when, why, from which state to which."""

    __tablename__ = "consult_transition"
    __table_args__ = (Index("ix_consult_transition_request", "request_id", "at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="consult_request.id")
    action: str = Field(max_length=24)
    from_status: ConsultStatus = Field(sa_type=enum_type(ConsultStatus))
    to_status: ConsultStatus = Field(sa_type=enum_type(ConsultStatus))
    actor_kind: str = Field(max_length=16)
    actor_id: uuid.UUID | None = None
    actor_name: str | None = Field(default=None, max_length=120)
    reason: str | None = Field(default=None, max_length=500)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsultEscalation(SQLModel, table=True):
    """One step of an unanswered request's escalation: to which specialist's service or to
    which coordinator it was handed, when and why. ``(request_id, round_at, level)`` is
    unique, so a step taken twice (a re-claimed timer) cannot commit twice; ``round_at`` is
    the request's ``submitted_at`` (a resubmitted request escalates afresh)."""

    __tablename__ = "consult_escalation"
    __table_args__ = (
        UniqueConstraint("request_id", "round_at", "level", name="uq_consult_escalation_step"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="consult_request.id", index=True)
    round_at: datetime = Field(sa_type=UTCDateTime)
    level: int
    target_kind: str = Field(max_length=16, description="specialist, coordinator or expire")
    practitioner_role_id: uuid.UUID | None = Field(default=None, foreign_key="practitioner_role.id")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    reason: str = Field(max_length=500)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


ACTIVE_APPOINTMENT = "status <> 'cancelled'"


class Appointment(Entity, table=True):
    __tablename__ = "appointment"
    __table_args__ = (
        Index(
            "uq_appointment_active_slot",
            "slot_id",
            unique=True,
            postgresql_where=text(ACTIVE_APPOINTMENT),
            sqlite_where=text(ACTIVE_APPOINTMENT),
        ),
        Index("ix_appointment_practitioner", "practitioner_id", "starts_at"),
    )

    request_id: uuid.UUID = Field(foreign_key="consult_request.id", index=True)
    slot_id: uuid.UUID = Field(foreign_key="slot.id")
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    practitioner_id: uuid.UUID = Field(foreign_key="practitioner.id")
    practitioner_role_id: uuid.UUID = Field(foreign_key="practitioner_role.id")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: AppointmentStatus = Field(
        default=AppointmentStatus.BOOKED, sa_type=enum_type(AppointmentStatus, 12)
    )
    booked_by: uuid.UUID | None = None
    status_reason: str | None = Field(default=None, max_length=500)


class ConsultAttachment(SQLModel, table=True):
    """A photo or PDF attached to a request; the bytes live on disk under the data directory
    with a random name (``storage_key``), never under a web root."""

    __tablename__ = "consult_attachment"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="consult_request.id", index=True)
    filename: str = Field(max_length=120)
    media_type: str = Field(max_length=40)
    size: int
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=64, unique=True)
    uploaded_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Recommendation(StrEnum):
    """What the specialist advises at the end of a consult."""

    TREAT_LOCALLY = "treat_locally"  # điều trị tại tuyến dưới
    TRANSFER = "transfer"  # chuyển tuyến
    FOLLOW_UP = "follow_up"  # hội chẩn / khám lại


class ConsultConclusion(SQLModel, table=True):
    """The specialist's conclusion of a completed consult, with the session's real times: the
    record that becomes the FHIR Encounter (one per appointment)."""

    __tablename__ = "consult_conclusion"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    appointment_id: uuid.UUID = Field(foreign_key="appointment.id", unique=True)
    request_id: uuid.UUID = Field(foreign_key="consult_request.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    practitioner_id: uuid.UUID = Field(foreign_key="practitioner.id")
    recommendation: Recommendation = Field(sa_type=enum_type(Recommendation, 16))
    advice: str = Field(max_length=4000)
    follow_up_on: date | None = None  # the local day the specialist wants to see the patient again
    session_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    session_ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recorded_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsultDiagnosis(SQLModel, table=True):
    """One WHO ICD-10 diagnosis of a conclusion (a FHIR Condition), in the order given."""

    __tablename__ = "consult_diagnosis"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    conclusion_id: uuid.UUID = Field(foreign_key="consult_conclusion.id", index=True)
    request_id: uuid.UUID = Field(foreign_key="consult_request.id")
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    rank: int
    code: str = Field(max_length=10)
    display: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
