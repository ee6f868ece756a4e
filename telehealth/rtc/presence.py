"""Who is connected to a room, what they did there, and the session's real times.

Presence is a column (``RoomParticipant.connection_id``) rather than process memory, so every
process serving the room sees the same roster. A participant who connects again replaces their
old connection (a reconnect), and the others stay where they are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import UserAccount
from telehealth.consent.checks import active_purposes
from telehealth.consent.models import ConsentPurpose
from telehealth.errors import PermissionDenied
from telehealth.rtc import rules
from telehealth.rtc.credentials import JoinClaims, read_join_token
from telehealth.rtc.models import (
    Room,
    RoomParticipant,
    RoomState,
    SessionEvent,
    SessionEventKind,
)
from telehealth.rtc.service import close_room, load_room, record_event, window_of
from telehealth.settings import Settings
from telehealth.timeutil import utcnow


@dataclass(frozen=True)
class RosterEntry:
    user_id: uuid.UUID
    name: str
    role: str
    connected: bool
    consented: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.user_id),
            "name": self.name,
            "role": self.role,
            "connected": self.connected,
            "consented": self.consented,
        }


@dataclass(frozen=True)
class Entry:
    """A join token good for a room now, and when that room's window ends."""

    claims: JoinClaims
    closes_at: datetime


@dataclass(frozen=True)
class Admission:
    claims: JoinClaims
    reconnect: bool
    roster: list[RosterEntry]
    closes_at: datetime


@dataclass(frozen=True)
class SessionTimes:
    """What the encounter and the no-show check need to know about a consult's session."""

    room_id: uuid.UUID
    started_at: datetime | None
    ended_at: datetime | None
    joined: frozenset[uuid.UUID]


async def roster(session: AsyncSession, room_id: uuid.UUID) -> list[RosterEntry]:
    rows = await session.exec(
        select(RoomParticipant, UserAccount.display_name)
        .join(UserAccount, col(UserAccount.id) == col(RoomParticipant.user_id))
        .where(col(RoomParticipant.room_id) == room_id)
        .order_by(col(RoomParticipant.created_at))
    )
    return [
        RosterEntry(
            p.user_id, name, p.role.value, p.connection_id is not None, p.consented_at is not None
        )
        for p, name in rows.all()
    ]


async def verify(
    session: AsyncSession, settings: Settings, room_id: uuid.UUID, token: str
) -> Entry:
    """The token's claims if it lets its holder into this room now (without joining)."""
    claims = read_join_token(settings, token, room_id)
    room = await load_room(session, room_id)
    rules.check_joinable(room.state, window_of(room), utcnow())
    listed = await session.exec(
        select(RoomParticipant.id).where(
            col(RoomParticipant.room_id) == room_id,
            col(RoomParticipant.user_id) == claims.user_id,
        )
    )
    if listed.first() is None:
        raise PermissionDenied(
            "Bạn không còn trong danh sách của phòng này. / "
            "You are no longer a participant of this consult room."
        )
    return Entry(claims, room.closes_at)


async def admit(
    session: AsyncSession,
    settings: Settings,
    room_id: uuid.UUID,
    token: str,
    connection_id: str,
) -> Admission:
    """Check a join token against the room now and mark its holder connected."""
    entry = await verify(session, settings, room_id, token)
    claims = entry.claims
    now = utcnow()
    marked = await session.exec(
        update(RoomParticipant)
        .where(
            col(RoomParticipant.room_id) == room_id,
            col(RoomParticipant.user_id) == claims.user_id,
        )
        .values(connection_id=connection_id, connected_at=now)
    )
    if not marked.rowcount:
        raise PermissionDenied(
            "Bạn không còn trong danh sách của phòng này. / "
            "You are no longer a participant of this consult room."
        )
    await session.exec(
        update(Room)
        .where(col(Room.id) == room_id, col(Room.state).in_([RoomState.SCHEDULED, RoomState.OPEN]))
        .values(
            state=RoomState.ACTIVE, updated_at=now, opened_at=func.coalesce(Room.opened_at, now)
        )
    )
    joined_before = (
        await session.exec(
            select(func.count())
            .select_from(SessionEvent)
            .where(
                col(SessionEvent.room_id) == room_id,
                col(SessionEvent.user_id) == claims.user_id,
                col(SessionEvent.kind) == SessionEventKind.JOIN,
            )
        )
    ).one() > 0
    kind = SessionEventKind.RECONNECT if joined_before else SessionEventKind.JOIN
    # The first arrival of each participant is a JOIN; every later one a RECONNECT.
    record_event(session, room_id, claims.user_id, kind, {"connection": connection_id})
    return Admission(claims, joined_before, await roster(session, room_id), entry.closes_at)


async def depart(
    session: AsyncSession, room_id: uuid.UUID, user_id: uuid.UUID, connection_id: str, reason: str
) -> bool:
    """Mark a connection gone, unless a newer one of the same person replaced it."""
    result = await session.exec(
        update(RoomParticipant)
        .where(
            col(RoomParticipant.room_id) == room_id,
            col(RoomParticipant.user_id) == user_id,
            col(RoomParticipant.connection_id) == connection_id,
        )
        .values(connection_id=None)
    )
    record_event(
        session,
        room_id,
        user_id,
        SessionEventKind.LEAVE,
        {"connection": connection_id, "reason": reason},
    )
    room = await load_room(session, room_id)
    if utcnow() >= room.ends_at and not any(p.connected for p in await roster(session, room_id)):
        await close_room(session, room_id)  # the consult is over and the last one has left
    return bool(result.rowcount)


async def give_consent(
    session: AsyncSession, room_id: uuid.UUID, user_id: uuid.UUID, consent: bool
) -> list[RosterEntry]:
    await session.exec(
        update(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room_id, col(RoomParticipant.user_id) == user_id)
        .values(consented_at=utcnow() if consent else None)
    )
    record_event(session, room_id, user_id, SessionEventKind.CONSENT, {"record": consent})
    return await roster(session, room_id)


def recording_permitted(people: list[RosterEntry]) -> bool:
    return rules.recording_allowed({str(p.user_id): p.consented for p in people if p.connected})


async def patient_consents_to_recording(session: AsyncSession, patient_id: uuid.UUID) -> bool:
    """The patient's own consent, recorded by their doctor: the clinicians agreeing in the
    room is not enough to record."""
    return ConsentPurpose.SESSION_RECORDING in await active_purposes(session, patient_id)


async def session_times(session: AsyncSession, appointment_id: uuid.UUID) -> SessionTimes | None:
    """The session's real start (first join) and end (last leave once everyone left, or the
    room's end), and who joined at all: for the Encounter and the no-show check."""
    room = (
        await session.exec(select(Room).where(col(Room.appointment_id) == appointment_id))
    ).first()
    if room is None:
        return None
    events = (
        await session.exec(
            select(SessionEvent.kind, SessionEvent.at, SessionEvent.user_id)
            .where(col(SessionEvent.room_id) == room.id)
            .order_by(col(SessionEvent.at))
        )
    ).all()
    present = any(p.connected for p in await roster(session, room.id))
    span = rules.session_span(events, present)
    return SessionTimes(room.id, span.started_at, span.ended_at, span.joined)
