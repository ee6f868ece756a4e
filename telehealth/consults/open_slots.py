"""Slots a patient can be booked into: free (or held past its hold), and not overlapping one of
the practitioner's bookings. Here, not in availability, because bookings are the consults'."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.principal import Caller
from telehealth.availability.models import Slot
from telehealth.availability.service import free_at
from telehealth.consults.models import Appointment, AppointmentStatus
from telehealth.directory.service import specialty_by_code
from telehealth.errors import InvalidInput, PermissionDenied
from telehealth.timeutil import utcnow


async def search_slots(
    session: AsyncSession,
    *,
    specialty_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    practitioner_id: uuid.UUID | None = None,
    practitioner_role_id: uuid.UUID | None = None,
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    limit: int = 20,
) -> Sequence[Slot]:
    """Free slots, earliest first, leaving out any that overlap the practitioner's bookings
    (a slot of another of their services may be booked at that time)."""
    now = utcnow()
    statement = select(Slot).where(
        col(Slot.starts_at) > max(now, starts_after or now),
        free_at(now),
        ~exists().where(
            col(Appointment.practitioner_id) == col(Slot.practitioner_id),
            col(Appointment.status) != AppointmentStatus.CANCELLED,
            col(Appointment.starts_at) < col(Slot.ends_at),
            col(Appointment.ends_at) > col(Slot.starts_at),
        ),
    )
    if specialty_id:
        statement = statement.where(Slot.specialty_id == specialty_id)
    if organization_id:
        statement = statement.where(Slot.organization_id == organization_id)
    if practitioner_id:
        statement = statement.where(Slot.practitioner_id == practitioner_id)
    if practitioner_role_id:
        statement = statement.where(Slot.practitioner_role_id == practitioner_role_id)
    if starts_before:
        statement = statement.where(col(Slot.starts_at) < starts_before)
    rows = await session.exec(
        statement.order_by(col(Slot.starts_at), col(Slot.id)).limit(min(limit, 200))
    )
    return rows.all()


async def find_slots(
    session: AsyncSession,
    caller: Caller,
    *,
    specialty_code: str | None = None,
    organization_id: uuid.UUID | None = None,
    practitioner_id: uuid.UUID | None = None,
    practitioner_role_id: uuid.UUID | None = None,
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    limit: int = 20,
) -> Sequence[Slot]:
    """Slot search for people: at least one of specialty, service or practitioner."""
    if not (specialty_code or practitioner_id or practitioner_role_id):
        raise InvalidInput.for_field(
            "specialty_code", "give a specialty, a service or a practitioner to search slots of"
        )
    if caller.principal.kind != "user":
        raise PermissionDenied("System clients read slots through /fhir")
    specialty_id = (await specialty_by_code(session, specialty_code)).id if specialty_code else None
    return await search_slots(
        session,
        specialty_id=specialty_id,
        organization_id=organization_id,
        practitioner_id=practitioner_id,
        practitioner_role_id=practitioner_role_id,
        starts_after=starts_after,
        starts_before=starts_before,
        limit=limit,
    )
