"""A booked consult's video room, as its participants reach it from the desk."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.principal import Caller
from telehealth.consults import rules
from telehealth.consults.booking import get_appointment
from telehealth.consults.service import load_request, practitioner_accounts
from telehealth.rtc.models import ParticipantRole
from telehealth.rtc.rules import RoomClosed
from telehealth.rtc.service import JoinGrant, ParticipantSpec, issue_join, open_room_for
from telehealth.settings import Settings


async def join_consult(
    session: AsyncSession, caller: Caller, settings: Settings, appointment_id: uuid.UUID
) -> JoinGrant:
    """A join token for the appointment's room, the room created (for the requester and the
    specialist) on first use; refused outside the room's window, to non-participants, and
    once the appointment is over."""
    appointment = await get_appointment(session, caller, appointment_id)
    if appointment.status not in rules.LIVE_APPOINTMENT:
        # Over (cancelled, no-show, completed): its room, had it one, is closed.
        raise RoomClosed("Phòng khám đã đóng. / The consult room is closed.")
    request = await load_request(session, appointment.request_id)
    people = [ParticipantSpec(request.requester_id, ParticipantRole.REQUESTER)] + [
        ParticipantSpec(account, ParticipantRole.SPECIALIST)
        for account in await practitioner_accounts(session, appointment.practitioner_id)
    ]
    room = await open_room_for(
        session,
        appointment.id,
        people,
        appointment.starts_at,
        appointment.ends_at,
        settings=settings,
    )
    return await issue_join(session, caller, settings, room.id)
