"""Taking a slot: the two writes of a booking that the database decides. The slot is claimed
with a conditional ``UPDATE slot ... WHERE status = 'free'`` (or held for the request being
booked, or its hold ran out); the appointment insert is then checked by the database (one active appointment
per slot, no overlap for one practitioner). The loser of either gets 409 "slot no longer
available". Both are Core statements built once (the booking hot path), whose rows are handed
to the unit of work's journal as written.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NoReturn

from sqlalchemy import and_, bindparam, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.availability.models import Slot, SlotStatus
from telehealth.availability.service import SLOT_TAKEN
from telehealth.consults.models import Appointment
from telehealth.db import core_connection, table_of
from telehealth.errors import Conflict, InvalidInput, NotFound
from telehealth.journal import journal

_SLOTS = table_of(Slot)
_APPOINTMENTS = table_of(Appointment)

# Built once: executing a prepared Core statement skips building it and most of its cache-key
# work on every booking (about a third of a statement's CPU, measured).
_CLAIM = (
    update(_SLOTS)
    .where(
        _SLOTS.c.id == bindparam("slot_id"),
        _SLOTS.c.starts_at > bindparam("now"),
        or_(
            _SLOTS.c.status == SlotStatus.FREE,
            and_(
                _SLOTS.c.status == SlotStatus.HELD,
                or_(
                    _SLOTS.c.held_for_request_id == bindparam("request_id"),
                    _SLOTS.c.hold_until < bindparam("now"),
                ),
            ),
        ),
    )
    .values(
        status=SlotStatus.BOOKED,
        hold_until=None,
        held_by=None,
        held_for_request_id=None,
        updated_at=bindparam("now"),
    )
    .returning(*_SLOTS.c)
)
_INSERT_APPOINTMENT = insert(_APPOINTMENTS)


async def claim_slot(
    session: AsyncSession, slot_id: uuid.UUID, request_id: uuid.UUID, now: datetime
) -> Slot:
    """Take a free slot (or one held for this request, or whose hold ran out) in one
    statement; the slot as now stored comes back for the FHIR write-through."""
    connection = await core_connection(session)
    row = (
        await connection.execute(_CLAIM, {"slot_id": slot_id, "now": now, "request_id": request_id})
    ).first()
    if row is None:
        await _explain_unclaimable(session, slot_id, now)
    slot = Slot(**row._mapping)
    journal(session).wrote(slot)
    return slot


async def _explain_unclaimable(
    session: AsyncSession, slot_id: uuid.UUID, now: datetime
) -> NoReturn:
    """Why a slot could not be claimed (only the losing path pays for this query)."""
    starts_at = (await session.exec(select(Slot.starts_at).where(Slot.id == slot_id))).first()
    if starts_at is None:
        raise NotFound("No such slot")
    if starts_at <= now:
        raise InvalidInput.for_field("slot_id", "the slot has already begun")
    raise Conflict(SLOT_TAKEN)


async def insert_appointment(session: AsyncSession, appointment: Appointment) -> None:
    """One Core INSERT; the database refuses a second active appointment for the slot or an
    overlapping one for the practitioner, and the loser gets 409."""
    connection = await core_connection(session)
    try:
        await connection.execute(
            _INSERT_APPOINTMENT,
            {column.name: getattr(appointment, column.name) for column in _APPOINTMENTS.c},
        )
    except IntegrityError as exc:
        raise Conflict(SLOT_TAKEN) from exc
    journal(session).wrote(appointment)
