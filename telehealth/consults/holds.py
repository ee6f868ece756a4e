"""Holding a slot for a consult request while a person confirms the booking.

A hold is for one request that may book the slot, decided exactly as booking decides it (who
may act on the request, its state, ``rules.slot_fit``): nobody can hold a specialist's day
without requests that fit it. A request holds one slot at a time: holding another replaces
its previous hold (a person changing their mind expects that), holding the same one again
renews it. The database keeps that under concurrency (unique ``slot.held_for_request_id``:
the loser gets 409). A hold runs out after ``TELEHEALTH_SLOT_HOLD_S``; until then only its
request can book the slot, and a ``slot.hold_expire`` timer frees it afterwards.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_consult_action
from telehealth.auth.principal import Caller
from telehealth.availability.models import Slot, SlotStatus
from telehealth.availability.service import HOLD_ENDED, HOLD_EXPIRE, SLOT_TAKEN, free_at
from telehealth.consults import rules
from telehealth.consults.models import ConsultRequest, ConsultStatus
from telehealth.consults.parties import caller_services, parties
from telehealth.consults.service import load_request
from telehealth.errors import Conflict, InvalidInput, NotFound
from telehealth.settings import Settings
from telehealth.timers.service import schedule
from telehealth.timeutil import utcnow


async def _check_may_book(session: AsyncSession, caller: Caller, request: ConsultRequest) -> None:
    """The caller may book this request now (or move its booking, once scheduled)."""
    moving = request.status == ConsultStatus.SCHEDULED
    services = await caller_services(session, caller.principal)
    check_consult_action(
        caller.principal, "reschedule" if moving else "book", parties(request), services
    )
    rules.next_status("reschedule" if moving else "schedule", request.status)


async def _release_holds_of(session: AsyncSession, request_id: uuid.UUID, now: datetime) -> None:
    await session.exec(
        update(Slot)
        .where(col(Slot.held_for_request_id) == request_id, col(Slot.status) == SlotStatus.HELD)
        .values(**HOLD_ENDED, updated_at=now)
        .execution_options(synchronize_session="evaluate")
    )


async def hold_slot(
    session: AsyncSession,
    caller: Caller,
    slot_id: uuid.UUID,
    request_id: uuid.UUID,
    settings: Settings,
) -> Slot:
    """Keep a slot for a request a few minutes while the booking is confirmed; the request's
    previous hold, if any, ends."""
    request = await load_request(session, request_id)
    caller.note(
        "hold", "Slot", slot_id, patient_id=request.patient_id, detail=f"request {request_id}"
    )
    await _check_may_book(session, caller, request)
    slot = await session.get(Slot, slot_id)
    if slot is None:
        raise NotFound("No such slot")
    rules.slot_fit(request, slot)
    now = utcnow()
    if slot.starts_at <= now:
        raise InvalidInput.for_field("slot_id", "the slot has already begun")
    await _release_holds_of(session, request.id, now)
    until = now + timedelta(seconds=settings.slot_hold_s)
    try:
        result = await session.exec(
            update(Slot)
            .where(col(Slot.id) == slot_id, free_at(now))
            .values(
                status=SlotStatus.HELD,
                hold_until=until,
                held_by=caller.principal.id,
                held_for_request_id=request.id,
                updated_at=now,
            )
            .execution_options(synchronize_session="evaluate")
        )
    except IntegrityError as exc:
        raise Conflict(
            "Yêu cầu này vừa giữ một khung giờ khác / this request has just held another "
            "slot; reload and try again"
        ) from exc
    if result.rowcount != 1:
        raise Conflict(SLOT_TAKEN)
    schedule(session, HOLD_EXPIRE, slot_id, until, {"held_by": str(caller.principal.id)})
    return slot
