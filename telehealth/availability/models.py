"""Availability tables: weekly rules and exceptions per service, and the slots made from them.

A *service* is a specialist's PractitionerRole (a specialty at an organization). Rules are in
local wall-clock time (Asia/Ho_Chi_Minh); slots are stored in UTC with the practitioner,
organization and specialty copied onto them so that slot search is one indexed query.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from telehealth.db import UTCDateTime
from telehealth.models import Entity, enum_type


class ExceptionKind(StrEnum):
    UNAVAILABLE = "unavailable"  # leave, holiday, meeting: no slots in the window
    EXTRA = "extra"  # one-off extra hours: slots in the window


class SlotStatus(StrEnum):
    FREE = "free"
    HELD = "held"  # briefly reserved while a person confirms; free again after hold_until
    BOOKED = "booked"


class AvailabilityRule(Entity, table=True):
    """Every ``weekday`` from ``start_time`` to ``end_time`` (local), slots of ``slot_minutes``."""

    __tablename__ = "availability_rule"

    practitioner_role_id: uuid.UUID = Field(foreign_key="practitioner_role.id", index=True)
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    start_time: time
    end_time: time
    slot_minutes: int = Field(ge=5, le=240)
    valid_from: date | None = None
    valid_until: date | None = None
    timezone: str = Field(default="Asia/Ho_Chi_Minh", max_length=40)
    created_by: uuid.UUID | None = None


class AvailabilityException(Entity, table=True):
    """A window (UTC) without slots, or with extra slots of ``slot_minutes``."""

    __tablename__ = "availability_exception"

    practitioner_role_id: uuid.UUID = Field(foreign_key="practitioner_role.id", index=True)
    kind: ExceptionKind = Field(sa_type=enum_type(ExceptionKind))
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    slot_minutes: int | None = Field(default=None, ge=5, le=240)
    reason: str | None = Field(default=None, max_length=300)
    created_by: uuid.UUID | None = None


class Slot(Entity, table=True):
    __tablename__ = "slot"
    __table_args__ = (
        UniqueConstraint("practitioner_role_id", "starts_at", name="uq_slot_role_start"),
        Index("ix_slot_search", "specialty_id", "status", "starts_at"),
        Index("ix_slot_practitioner", "practitioner_id", "starts_at"),
        # One hold per consult request: a second concurrent hold of it loses here (409).
        Index("uq_slot_held_for_request", "held_for_request_id", unique=True),
    )

    practitioner_role_id: uuid.UUID = Field(foreign_key="practitioner_role.id")
    practitioner_id: uuid.UUID = Field(foreign_key="practitioner.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    specialty_id: uuid.UUID = Field(foreign_key="specialty.id")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: SlotStatus = Field(default=SlotStatus.FREE, sa_type=enum_type(SlotStatus, 8))
    hold_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    held_by: uuid.UUID | None = None  # the account that held it, for the record
    # The consult request the slot is held for: only it may book the slot until hold_until.
    # No foreign key, like held_by: the column is cleared when the hold ends or is used.
    held_for_request_id: uuid.UUID | None = None
