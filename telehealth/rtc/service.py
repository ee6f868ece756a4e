"""Rooms themselves: open one for an appointment, add people, open it when its window
starts, close it, record what happened in it. Who may see, join or invite into a room follows
its consult, so those use cases live with the consults (``telehealth.consults.rooms``).

Booking and the ``room.open`` timer call :func:`open_room_for`. State changes are conditional
UPDATEs, so two processes racing to open, activate or close a room cannot both win.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import (
    NO_SUCH_ROOM,
)
from telehealth.db import core_connection, insert_rows, table_of
from telehealth.errors import NotFound
from telehealth.journal import journal
from telehealth.rtc import rules
from telehealth.rtc.closures import announce_closed
from telehealth.rtc.models import (
    ParticipantRole,
    Room,
    RoomParticipant,
    RoomState,
    SessionEvent,
    SessionEventKind,
)
from telehealth.settings import Settings
from telehealth.timeutil import utcnow

_DEFAULTS = Settings.model_fields
_ROOMS = table_of(Room)
_PARTICIPANTS = table_of(RoomParticipant)
# Built once per dialect: a room if the appointment has none yet (its id returned if so), and
# participants unless already in.
_CREATE_ROOM = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_ROOMS)
    .on_conflict_do_nothing(index_elements=["appointment_id"])
    .returning(_ROOMS.c.id)
    for dialect in (postgresql, sqlite)
}


@dataclass(frozen=True)
class ParticipantSpec:
    user_id: uuid.UUID
    role: ParticipantRole


@dataclass(frozen=True)
class JoinGrant:
    room: Room
    token: str
    ice_servers: list[dict[str, Any]]
    expires_in_s: int


def window_of(room: Room) -> rules.RoomWindow:
    return rules.RoomWindow(opens_at=room.opens_at, closes_at=room.closes_at)


async def open_room_for(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    participants: Sequence[ParticipantSpec],
    starts_at: datetime,
    ends_at: datetime,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Room:
    """The appointment's room, created on first call, kept in step with the booking's times
    and participants on later calls, and opened once its window has begun. Safe to repeat."""
    now = now or utcnow()
    before = settings.room_open_before_s if settings else _DEFAULTS["room_open_before_s"].default
    grace = settings.room_grace_after_s if settings else _DEFAULTS["room_grace_after_s"].default
    window = rules.room_window(starts_at, ends_at, before, grace)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "appointment_id": appointment_id,
        "state": RoomState.SCHEDULED,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "opens_at": window.opens_at,
        "closes_at": window.closes_at,
        "opened_at": None,
        "ended_at": None,
        "created_at": now,
        "updated_at": now,
    }
    connection = await core_connection(session)
    created = (await connection.execute(_CREATE_ROOM[connection.dialect.name], values)).first()
    if created is not None:
        # The row just written, made persistent in the session without reading it back.
        room = Room(**values)
        make_transient_to_detached(room)
        session.add(room)
    else:
        room = (
            await session.exec(select(Room).where(col(Room.appointment_id) == appointment_id))
        ).one()
    if room.state != RoomState.ENDED and (room.starts_at, room.ends_at) != (starts_at, ends_at):
        room.starts_at, room.ends_at = starts_at, ends_at
        room.opens_at, room.closes_at = window.opens_at, window.closes_at
        room.updated_at = now
        if room.state == RoomState.OPEN and now < window.opens_at:
            room.state = RoomState.SCHEDULED  # moved later before anyone joined
        session.add(room)
        await session.flush()
    journal(session).tell(
        ("room_of", appointment_id), room.id
    )  # for the Appointment's FHIR version
    await add_participants(session, room.id, participants, added_by=None)
    if rules.should_open(room.state, window, now):
        await open_now(session, room, now)
    return room


async def add_participants(
    session: AsyncSession,
    room_id: uuid.UUID,
    people: Sequence[ParticipantSpec],
    added_by: uuid.UUID | None,
) -> None:
    """Everyone in one statement; those already in the room are left as they are."""
    if not people:
        return
    now = utcnow()
    await insert_rows(
        session,
        _PARTICIPANTS,
        [
            {
                "id": uuid.uuid4(),
                "room_id": room_id,
                "user_id": spec.user_id,
                "role": spec.role,
                "added_by": added_by,
                "created_at": now,
            }
            for spec in people
        ],
        unless_stored=("room_id", "user_id"),
    )


async def open_now(session: AsyncSession, room: Room, now: datetime) -> None:
    await session.exec(
        update(Room)
        .where(col(Room.id) == room.id, col(Room.state) == RoomState.SCHEDULED)
        .values(state=RoomState.OPEN, opened_at=now, updated_at=now)
    )
    await session.refresh(room)


async def load_room(session: AsyncSession, room_id: uuid.UUID) -> Room:
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound(NO_SUCH_ROOM)
    return room


async def participants_of(session: AsyncSession, room_id: uuid.UUID) -> list[RoomParticipant]:
    rows = await session.exec(
        select(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room_id)
        .order_by(col(RoomParticipant.created_at))
    )
    return list(rows.all())


async def close_room(
    session: AsyncSession, room_id: uuid.UUID, now: datetime | None = None
) -> bool:
    """End a room (idempotent): True if this call ended it. Once the transaction commits, the
    connections still in it are ended, in every process (``closures``)."""
    now = now or utcnow()
    result = await session.exec(
        update(Room)
        .where(col(Room.id) == room_id, col(Room.state) != RoomState.ENDED)
        .values(state=RoomState.ENDED, ended_at=now, updated_at=now)
    )
    await session.exec(
        update(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room_id)
        .values(connection_id=None)
    )
    if not result.rowcount:
        return False
    await announce_closed(session, room_id)
    return True


async def close_room_of(session: AsyncSession, appointment_id: uuid.UUID) -> bool:
    """End the appointment's room, if it has one: its consult is over (cancelled, no-show,
    completed), so nobody may enter any more, and whoever is in it is let go."""
    rooms = await session.exec(select(Room.id).where(col(Room.appointment_id) == appointment_id))
    room_id = rooms.first()
    return room_id is not None and await close_room(session, room_id)


async def close_expired_rooms(session: AsyncSession, now: datetime | None = None) -> int:
    """End every room whose grace period is over (for a periodic job)."""
    now = now or utcnow()
    rows = await session.exec(
        select(Room.id).where(col(Room.state) != RoomState.ENDED, col(Room.closes_at) <= now)
    )
    ended = 0
    for room_id in rows.all():
        ended += await close_room(session, room_id, now)
    return ended


def record_event(
    session: AsyncSession,
    room_id: uuid.UUID,
    user_id: uuid.UUID | None,
    kind: SessionEventKind,
    detail: dict[str, Any] | None = None,
) -> SessionEvent:
    event = SessionEvent(room_id=room_id, user_id=user_id, kind=kind, detail=detail or {})
    session.add(event)
    return event
