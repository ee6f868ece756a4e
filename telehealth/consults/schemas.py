"""What the consults API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from telehealth.consults.models import (
    ActivityType,
    AppointmentStatus,
    ConsultStatus,
    Priority,
    Recommendation,
)
from telehealth.fields import Schema

Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ConsultCreate(Schema):
    patient_id: uuid.UUID
    activity_type: ActivityType = Field(description="one of the six of Circular 49/2017/TT-BYT")
    specialty_code: str = Field(max_length=32, description="SNOMED CT code, see /api/specialties")
    target_organization_id: uuid.UUID | None = Field(
        default=None, description="a provincial hospital; empty for any provincial hospital"
    )
    priority: Priority = Priority.ROUTINE
    reason: Text500
    clinical_summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ]
    diagnoses: list[Annotated[str, StringConstraints(max_length=10)]] = Field(
        default_factory=list, max_length=12, description="WHO ICD-10 codes, e.g. I21.0"
    )
    vital_signs: dict[str, float] = Field(
        default_factory=dict,
        description="heart_rate, systolic_bp, diastolic_bp, respiratory_rate, temperature_c, "
        "spo2, weight_kg, height_cm, blood_glucose_mmol",
    )
    submit: bool = Field(default=True, description="false keeps it as a draft")


class ActionInput(Schema):
    reason: Reason | None = None


class DeclineInput(Schema):
    reason: Reason
    return_to: Literal["queue", "requester"] = "queue"


class AssignInput(Schema):
    practitioner_role_id: uuid.UUID
    reason: Reason | None = None


class Diagnosis(Schema):
    code: str
    display: str


class ConsultRead(Schema):
    id: uuid.UUID
    patient_id: uuid.UUID
    requesting_organization_id: uuid.UUID
    requester_id: uuid.UUID
    activity_type: ActivityType
    specialty_id: uuid.UUID
    target_organization_id: uuid.UUID | None
    priority: Priority
    reason: str
    clinical_summary: str
    diagnoses: list[Diagnosis]
    vital_signs: dict[str, float]
    status: ConsultStatus
    status_reason: str | None
    assigned_role_id: uuid.UUID | None
    assigned_practitioner_id: uuid.UUID | None
    submitted_at: datetime | None
    accepted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TransitionRead(Schema):
    action: str
    from_status: ConsultStatus
    to_status: ConsultStatus
    actor_kind: str
    actor_id: uuid.UUID | None
    actor_name: str | None
    reason: str | None
    at: datetime


class BookingInput(Schema):
    request_id: uuid.UUID
    slot_id: uuid.UUID


class RescheduleInput(Schema):
    slot_id: uuid.UUID
    reason: Reason | None = None


class AppointmentRead(Schema):
    id: uuid.UUID
    request_id: uuid.UUID
    slot_id: uuid.UUID
    patient_id: uuid.UUID
    practitioner_id: uuid.UUID
    practitioner_role_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    status_reason: str | None


class AttachmentRead(Schema):
    id: uuid.UUID
    request_id: uuid.UUID
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: uuid.UUID
    created_at: datetime


class ConclusionInput(Schema):
    """The specialist's conclusion: WHO ICD-10 diagnoses, what to do next, and advice."""

    diagnoses: list[str] = Field(min_length=1, max_length=10)
    recommendation: Recommendation
    advice: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    follow_up_on: date | None = Field(
        default=None, description="Local day of a follow-up consult or visit, if any"
    )


class ConclusionRead(Schema):
    id: uuid.UUID
    appointment_id: uuid.UUID
    request_id: uuid.UUID
    diagnoses: list[Diagnosis]
    recommendation: Recommendation
    advice: str
    follow_up_on: date | None
    session_started_at: datetime | None
    session_ended_at: datetime | None
    created_at: datetime
