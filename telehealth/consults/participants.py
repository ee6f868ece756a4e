"""Who takes part in an appointment, and its video room kept in step with the booking.

Booking and rescheduling call :func:`sync_room` (the room exists from booking on; the
``room.open`` timer opens it); the reminder job reads :func:`appointment_people`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import UserAccount
from telehealth.consults.models import Appointment
from telehealth.rtc.models import ParticipantRole, Room, RoomParticipant
from telehealth.rtc.service import ParticipantSpec, open_room_for
from telehealth.settings import Settings


def booked_participants(
    requester_id: uuid.UUID, specialist_accounts: Sequence[uuid.UUID]
) -> list[ParticipantSpec]:
    """The requesting doctor and the specialist's accounts."""
    return [
        ParticipantSpec(requester_id, ParticipantRole.REQUESTER),
        *(ParticipantSpec(account, ParticipantRole.SPECIALIST) for account in specialist_accounts),
    ]


async def sync_room(
    session: AsyncSession,
    appointment: Appointment,
    participants: Sequence[ParticipantSpec],
    settings: Settings | None,
) -> Room:
    """Create or update the appointment's room with its times and people (idempotent)."""
    return await open_room_for(
        session,
        appointment.id,
        participants,
        appointment.starts_at,
        appointment.ends_at,
        settings=settings,
    )


async def appointment_people(
    session: AsyncSession, appointment: Appointment, requester_id: uuid.UUID
) -> list[UserAccount]:
    """Every active account taking part: the requesting doctor, the specialist's accounts and
    anyone invited to the room, each once, in a stable order."""
    ids: dict[uuid.UUID, None] = {requester_id: None}
    specialists = await session.exec(
        select(UserAccount.id).where(
            col(UserAccount.practitioner_id) == appointment.practitioner_id
        )
    )
    ids.update(dict.fromkeys(specialists.all()))
    invited = await session.exec(
        select(RoomParticipant.user_id)
        .join(Room, col(Room.id) == col(RoomParticipant.room_id))
        .where(col(Room.appointment_id) == appointment.id)
        .order_by(col(RoomParticipant.created_at))
    )
    ids.update(dict.fromkeys(invited.all()))
    accounts = await session.exec(
        select(UserAccount).where(col(UserAccount.id).in_(list(ids)), col(UserAccount.active))
    )
    by_id = {account.id: account for account in accounts.all()}
    return [by_id[i] for i in ids if i in by_id]
