"""Room use cases: open a room for an appointment, invite, hand out join tokens, close.

Booking and the ``room.open`` timer call :func:`open_room_for`; people call the others through
``/api/rooms``. State changes are conditional UPDATEs, so two processes racing to open, activate
or close a room cannot both win.
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

from telehealth.auth.access import require_role
from telehealth.auth.models import Role, UserAccount
from telehealth.auth.principal import Caller
from telehealth.db import core_connection, insert_rows, table_of
from telehealth.errors import InvalidInput, NotFound, PermissionDenied
from telehealth.fhir.facts import know
from telehealth.rtc import rules
from telehealth.rtc.credentials import JoinClaims, ice_servers, issue_join_token
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
    know(session, ("room_of", appointment_id), room.id)  # for the Appointment's FHIR version
    await _add_participants(session, room.id, participants, added_by=None)
    if rules.should_open(room.state, window, now):
        await _open(session, room, now)
    return room


async def _add_participants(
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


async def _open(session: AsyncSession, room: Room, now: datetime) -> None:
    await session.exec(
        update(Room)
        .where(col(Room.id) == room.id, col(Room.state) == RoomState.SCHEDULED)
        .values(state=RoomState.OPEN, opened_at=now, updated_at=now)
    )
    await session.refresh(room)


async def load_room(session: AsyncSession, room_id: uuid.UUID) -> Room:
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("Không có phòng khám này. / No such consult room.")
    return room


async def participants_of(session: AsyncSession, room_id: uuid.UUID) -> list[RoomParticipant]:
    rows = await session.exec(
        select(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room_id)
        .order_by(col(RoomParticipant.created_at))
    )
    return list(rows.all())


async def room_for_caller(
    session: AsyncSession, caller: Caller, room_id: uuid.UUID
) -> tuple[Room, list[RoomParticipant]]:
    """A room seen by one of its participants or a coordinator; to others it does not exist."""
    room = await load_room(session, room_id)
    people = await participants_of(session, room_id)
    principal = caller.principal
    if principal.role != Role.COORDINATOR and principal.id not in {p.user_id for p in people}:
        raise NotFound("Không có phòng khám này. / No such consult room.")
    caller.note("read", "Room", room.id)
    return room, people


async def invite_participant(
    session: AsyncSession,
    caller: Caller,
    room_id: uuid.UUID,
    user_id: uuid.UUID,
) -> list[RoomParticipant]:
    """A coordinator adds a second specialist or an interpreter to a room not yet ended."""
    require_role(caller.principal, Role.COORDINATOR)
    room = await load_room(session, room_id)
    caller.note("invite", "Room", room.id, detail=f"user {user_id}")
    if room.state == RoomState.ENDED:
        raise rules.RoomClosed("Phòng khám đã đóng. / The consult room is closed.")
    account = await session.get(UserAccount, user_id)
    if account is None or not account.active:
        raise InvalidInput.for_field("user_id", "no active account with this id")
    if account.role not in (Role.SPECIALIST, Role.REQUESTER):
        raise InvalidInput.for_field("user_id", "only clinicians or interpreters can be invited")
    spec = ParticipantSpec(user_id, ParticipantRole.INVITED)
    await _add_participants(session, room.id, [spec], added_by=caller.principal.id)
    return await participants_of(session, room.id)


async def issue_join(
    session: AsyncSession, caller: Caller, settings: Settings, room_id: uuid.UUID
) -> JoinGrant:
    """A join token and ICE servers for a participant of a room that is open now."""
    now = utcnow()
    room = await load_room(session, room_id)
    caller.note("join-token", "Room", room.id)
    person = (
        await session.exec(
            select(RoomParticipant).where(
                col(RoomParticipant.room_id) == room.id,
                col(RoomParticipant.user_id) == caller.principal.id,
            )
        )
    ).first()
    if person is None:
        raise PermissionDenied(
            "Bạn không phải người tham gia buổi hội chẩn này. / "
            "You are not a participant of this consult."
        )
    rules.check_joinable(room.state, window_of(room), now)
    if rules.should_open(room.state, window_of(room), now):
        await _open(session, room, now)
    claims = JoinClaims(room.id, caller.principal.id, person.role.value, caller.principal.name)
    return JoinGrant(
        room=room,
        token=issue_join_token(settings, claims, now),
        ice_servers=ice_servers(settings, str(caller.principal.id), now),
        expires_in_s=settings.join_token_ttl_s,
    )


async def close_room(
    session: AsyncSession, room_id: uuid.UUID, now: datetime | None = None
) -> bool:
    """End a room (idempotent): True if this call ended it."""
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
    return bool(result.rowcount)


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
