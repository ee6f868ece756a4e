"""What the availability API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from pydantic import AwareDatetime, Field

from telehealth.availability.models import ExceptionKind, SlotStatus
from telehealth.fields import Schema


class RuleCreate(Schema):
    practitioner_role_id: uuid.UUID = Field(description="the service: a specialist's role")
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    start_time: time = Field(description="local time, Asia/Ho_Chi_Minh")
    end_time: time
    slot_minutes: int = Field(ge=5, le=240)
    valid_from: date | None = None
    valid_until: date | None = None


class RuleRead(Schema):
    id: uuid.UUID
    practitioner_role_id: uuid.UUID
    weekday: int
    start_time: time
    end_time: time
    slot_minutes: int
    valid_from: date | None
    valid_until: date | None
    timezone: str


class ExceptionCreate(Schema):
    practitioner_role_id: uuid.UUID
    kind: ExceptionKind
    starts_at: AwareDatetime = Field(description="with its offset, e.g. 2026-12-01T08:00+07:00")
    ends_at: AwareDatetime
    slot_minutes: int | None = Field(default=None, ge=5, le=240, description="extra hours only")
    reason: str | None = Field(default=None, max_length=300)


class ExceptionRead(Schema):
    id: uuid.UUID
    practitioner_role_id: uuid.UUID
    kind: ExceptionKind
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int | None
    reason: str | None


class SlotRead(Schema):
    id: uuid.UUID
    practitioner_role_id: uuid.UUID
    practitioner_id: uuid.UUID
    organization_id: uuid.UUID
    specialty_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    status: SlotStatus
    hold_until: datetime | None = None


class HoldCreate(Schema):
    request_id: uuid.UUID = Field(
        description="the accepted (or scheduled) consult request the slot is held for; it "
        "must fit the slot, and its previous hold, if any, ends"
    )


class SpanRead(Schema):
    starts_at: datetime
    ends_at: datetime


class RegenerationReport(Schema):
    """What regenerating a service's slots did; conflicts are booked slots the rules dropped."""

    practitioner_role_id: uuid.UUID
    added: int
    removed: int
    conflicts: list[SpanRead]


class RulePublished(Schema):
    rule: RuleRead
    slots: RegenerationReport


class ExceptionPublished(Schema):
    exception: ExceptionRead
    slots: RegenerationReport
