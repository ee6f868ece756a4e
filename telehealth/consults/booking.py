"""Booking: a slot taken for an accepted request, exactly once, whatever the load.

The slot is claimed and the appointment inserted under the database's rules
(``slot_taking``); whoever loses gets 409 "slot no longer available" and the transaction, with
everything it wrote, is rolled back. What a booking writes beside the appointment:
``booking_effects``. Appointments' later life (reschedule, cancel, no-show, start, complete)
is here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_consult_action, check_consult_read
from telehealth.auth.models import UserAccount
from telehealth.auth.principal import Caller
from telehealth.availability.models import Slot, SlotStatus
from telehealth.availability.service import SLOT_TAKEN
from telehealth.consent.checks import require_consent_for
from telehealth.consults import rules
from telehealth.consults.booking_effects import write_appointment_side_effects
from telehealth.consults.models import (
    Appointment,
    AppointmentStatus,
    ConsultAttachment,
    ConsultRequest,
    ConsultStatus,
    Priority,
)
from telehealth.consults.open_slots import search_slots
from telehealth.consults.parties import caller_services, parties
from telehealth.consults.service import load_request, release_appointment_of, transition
from telehealth.consults.slot_taking import claim_slot, insert_appointment
from telehealth.directory.models import Specialty
from telehealth.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from telehealth.journal import journal
from telehealth.rtc.service import close_room_of
from telehealth.settings import Settings
from telehealth.timers.service import cancel_timers
from telehealth.timeutil import utcnow

_REQUESTER = aliased(UserAccount)
_ATTACHMENTS = (
    sa.select(sa.func.count())
    .where(col(ConsultAttachment.request_id) == col(ConsultRequest.id))
    .scalar_subquery()
)
# The request, its specialist's accounts, and what its FHIR resources name (requester's
# account, specialty, whether it has attachments), in one query.
# (Typed Any: sqlmodel's ``exec`` has no overload for five columns.)
_REQUEST_WITH_ACCOUNTS: Any = (
    select(ConsultRequest, UserAccount.id, _REQUESTER, Specialty)
    .add_columns(_ATTACHMENTS)
    .join(_REQUESTER, col(_REQUESTER.id) == col(ConsultRequest.requester_id))
    .outerjoin(Specialty, col(Specialty.id) == col(ConsultRequest.specialty_id))
    .outerjoin(
        UserAccount,
        col(UserAccount.practitioner_id) == col(ConsultRequest.assigned_practitioner_id),
    )
    .where(col(ConsultRequest.id) == bindparam("request_id"))
)


async def _request_with_specialist_accounts(
    session: AsyncSession, request_id: uuid.UUID
) -> tuple[ConsultRequest, list[uuid.UUID]]:
    """The request and its assigned specialist's accounts, in one query; the rows its FHIR
    resources name are kept in the journal (no query for them at commit)."""
    rows = (await session.exec(_REQUEST_WITH_ACCOUNTS, params={"request_id": request_id})).all()
    if not rows:
        raise NotFound("No such consult request, or not one you have access to")
    request: ConsultRequest
    request, _, requester, specialty, attachments = rows[0]
    told = journal(session)
    told.keep(requester, specialty)
    if attachments == 0:
        told.tell(("attachments_of", request.id), [])
    return request, [row[1] for row in rows if row[1] is not None]


async def book_slot(
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    slot_id: uuid.UUID,
    settings: Settings,
) -> Appointment:
    principal = caller.principal
    request, accounts = await _request_with_specialist_accounts(session, request_id)
    caller.note("book", "Appointment", patient_id=request.patient_id, detail=f"slot {slot_id}")
    services = await caller_services(session, principal)
    check_consult_action(principal, "book", parties(request), services)
    rules.next_status("schedule", request.status)
    await require_consent_for(session, request.patient_id, "schedule")
    now = utcnow()
    slot = await claim_slot(session, slot_id, request.id, now)
    reassignment = rules.slot_fit(request, slot)
    appointment = Appointment(
        request_id=request.id,
        slot_id=slot_id,
        patient_id=request.patient_id,
        practitioner_id=slot.practitioner_id,
        practitioner_role_id=slot.practitioner_role_id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        booked_by=principal.id,
    )
    await insert_appointment(session, appointment)
    await transition(session, principal, request, "schedule", **reassignment)
    await write_appointment_side_effects(
        session,
        request,
        appointment,
        "appointment.booked",
        now,
        settings,
        accounts if not reassignment else None,
    )
    caller.notes[-1].entity_id = str(appointment.id)
    journal(session).changed("ConsultRequest", request.id, "appointment.booked")
    return appointment


async def _load_appointment(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID, action: str
) -> tuple[Appointment, ConsultRequest]:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound("No such appointment, or not one you have access to")
    caller.note(action, "Appointment", appointment_id, patient_id=appointment.patient_id)
    request = await load_request(session, appointment.request_id)
    services = await caller_services(session, caller.principal)
    if action == "read":
        check_consult_read(caller.principal, parties(request), services)
    else:
        check_consult_action(caller.principal, action, parties(request), services)
        await require_consent_for(session, request.patient_id, action)
    return appointment, request


async def get_appointment(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID
) -> Appointment:
    appointment, _ = await _load_appointment(session, caller, appointment_id, "read")
    return appointment


async def reschedule(
    session: AsyncSession,
    caller: Caller,
    appointment_id: uuid.UUID,
    slot_id: uuid.UUID,
    reason: str | None,
    settings: Settings,
) -> Appointment:
    """Move a booked appointment to another slot: the new slot is taken and the old one freed
    in one transaction, or nothing changes."""
    appointment, request = await _load_appointment(session, caller, appointment_id, "reschedule")
    if appointment.status != AppointmentStatus.BOOKED:
        raise InvalidTransition(
            f"The appointment is {appointment.status.value}; only a booked one can be moved"
        )
    if slot_id == appointment.slot_id:
        raise InvalidInput.for_field("slot_id", "is the slot the appointment is in already")
    now = utcnow()
    slot = await claim_slot(session, slot_id, request.id, now)
    reassignment = rules.slot_fit(request, slot)
    old_slot = appointment.slot_id
    try:
        result = await session.exec(
            update(Appointment)
            .where(
                col(Appointment.id) == appointment.id,
                col(Appointment.status) == AppointmentStatus.BOOKED,
            )
            .values(
                slot_id=slot_id,
                practitioner_id=slot.practitioner_id,
                practitioner_role_id=slot.practitioner_role_id,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                updated_at=now,
            )
            .execution_options(synchronize_session="evaluate")
        )
    except IntegrityError as exc:
        raise Conflict(SLOT_TAKEN) from exc
    if result.rowcount != 1:
        raise InvalidTransition("The appointment changed meanwhile; reload and retry")
    await session.exec(
        update(Slot)
        .where(col(Slot.id) == old_slot)
        .values(status=SlotStatus.FREE, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await transition(session, caller.principal, request, "reschedule", reason, **reassignment)
    await cancel_timers(session, appointment.id)
    await write_appointment_side_effects(
        session, request, appointment, "appointment.rescheduled", now, settings
    )
    journal(session).changed("ConsultRequest", request.id, "appointment.reschedule")
    return appointment


async def cancel_appointment(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID, reason: str
) -> Appointment:
    """Cancel the booking (slot freed, reason kept); the request goes back to accepted so that
    it can be booked again, or can be cancelled itself."""
    appointment, request = await _load_appointment(session, caller, appointment_id, "unschedule")
    rules.next_status("unschedule", request.status, reason)
    await release_appointment_of(session, caller.principal, request, reason)
    await transition(session, caller.principal, request, "unschedule", reason)
    journal(session).changed("ConsultRequest", request.id, "appointment.cancel")
    return appointment


async def mark_no_show(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID, reason: str
) -> Appointment:
    appointment, request = await _load_appointment(session, caller, appointment_id, "no_show")
    rules.next_status("no_show", request.status, reason)
    await release_appointment_of(
        session, caller.principal, request, reason, AppointmentStatus.NO_SHOW
    )
    await transition(session, caller.principal, request, "no_show", reason)
    journal(session).changed("ConsultRequest", request.id, "appointment.no-show")
    return appointment


async def _set_appointment_status(
    session: AsyncSession,
    appointment: Appointment,
    sources: tuple[AppointmentStatus, ...],
    target: AppointmentStatus,
) -> None:
    result = await session.exec(
        update(Appointment)
        .where(col(Appointment.id) == appointment.id, col(Appointment.status).in_(sources))
        .values(status=target, updated_at=utcnow())
        .execution_options(synchronize_session="evaluate")
    )
    if result.rowcount != 1:
        raise InvalidTransition(
            f"The appointment is {appointment.status.value}; cannot make it {target.value}"
        )
    if target not in rules.LIVE_APPOINTMENT:
        await close_room_of(session, appointment.id)  # the consult is over: so is its room


async def start_consult(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID
) -> Appointment:
    """The consult has begun (the video room calls this when the specialist joins)."""
    appointment, request = await _load_appointment(session, caller, appointment_id, "start")
    await _set_appointment_status(
        session, appointment, (AppointmentStatus.BOOKED,), AppointmentStatus.IN_PROGRESS
    )
    await transition(session, caller.principal, request, "start")
    await cancel_timers(session, appointment.id, ["appointment.no_show"])
    return appointment


async def complete_consult(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID, reason: str | None
) -> Appointment:
    appointment, request = await _load_appointment(session, caller, appointment_id, "complete")
    await _set_appointment_status(
        session,
        appointment,
        (AppointmentStatus.BOOKED, AppointmentStatus.IN_PROGRESS),
        AppointmentStatus.COMPLETED,
    )
    await transition(session, caller.principal, request, "complete", reason)
    await cancel_timers(session, appointment.id)
    journal(session).changed("ConsultRequest", request.id, "appointment.complete")
    return appointment


async def appointments_of_request(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID
) -> Sequence[Appointment]:
    request = await load_request(session, request_id)
    caller.note(
        "read", "Appointment", patient_id=request.patient_id, detail=f"request {request_id}"
    )
    check_consult_read(
        caller.principal, parties(request), await caller_services(session, caller.principal)
    )
    rows = await session.exec(
        select(Appointment)
        .where(Appointment.request_id == request_id)
        .order_by(col(Appointment.created_at))
    )
    return rows.all()


async def no_show_if_unattended(session: AsyncSession, appointment_id: uuid.UUID) -> bool:
    """Timer job for ``appointment.no_show``: still booked (nobody started it) means no-show."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.status != AppointmentStatus.BOOKED:
        return False
    request = await session.get(ConsultRequest, appointment.request_id)
    if request is None or request.status != ConsultStatus.SCHEDULED:
        return False
    reason = "Không ai tham gia / nobody joined"
    await release_appointment_of(session, None, request, reason, AppointmentStatus.NO_SHOW)
    await transition(session, None, request, "no_show", reason)
    journal(session).changed("ConsultRequest", request.id, "appointment.no-show")
    return True


async def slots_for_request(
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    *,
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    limit: int = 20,
) -> Sequence[Slot]:
    """The earliest slots fitting a request: a routine one with the specialist who accepted it
    (or its hospital's specialists of the specialty), an urgent or emergency one the soonest
    across every specialist of the specialty."""
    request = await load_request(session, request_id)
    caller.note("search", "Slot", detail=f"for request {request_id}")
    check_consult_read(
        caller.principal, parties(request), await caller_services(session, caller.principal)
    )
    soonest = request.priority != Priority.ROUTINE
    return await search_slots(
        session,
        specialty_id=request.specialty_id,
        organization_id=None if soonest else request.target_organization_id,
        practitioner_id=None if soonest else request.assigned_practitioner_id,
        starts_after=starts_after,
        starts_before=starts_before,
        limit=limit,
    )
