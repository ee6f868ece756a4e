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

from telehealth.auth.access import (
    NO_SUCH_ROOM,
    ConsultParties,
    Service,
    check_room_invite,
    check_room_read,
    may_be_invited,
)
from telehealth.auth.login import principal_of
from telehealth.auth.models import UserAccount
from telehealth.auth.principal import Caller, Principal
from telehealth.consults.models import Appointment, ConsultRequest
from telehealth.consults.parties import caller_services, parties
from telehealth.db import core_connection, insert_rows, table_of
from telehealth.directory.models import PractitionerRole
from telehealth.errors import InvalidInput, NotFound, PermissionDenied
from telehealth.journal import journal
from telehealth.rtc import rules
from telehealth.rtc.closures import announce_closed
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
    journal(session).tell(
        ("room_of", appointment_id), room.id
    )  # for the Appointment's FHIR version
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
        raise NotFound(NO_SUCH_ROOM)
    return room


async def participants_of(session: AsyncSession, room_id: uuid.UUID) -> list[RoomParticipant]:
    rows = await session.exec(
        select(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room_id)
        .order_by(col(RoomParticipant.created_at))
    )
    return list(rows.all())


@dataclass(frozen=True)
class RoomConsult:
    """What decides who may see a room: its consult's parties and the hospital it is booked at."""

    parties: ConsultParties
    hospital_id: uuid.UUID
    patient_id: uuid.UUID


@dataclass(frozen=True)
class SeenRoom:
    """A room, its consult and people, and the caller's consult services: all an access
    decision about the room needs."""

    room: Room
    consult: RoomConsult
    services: frozenset[Service]
    people: list[RoomParticipant]

    def participant(self, user_id: uuid.UUID) -> RoomParticipant | None:
        return next((p for p in self.people if p.user_id == user_id), None)

    def check_read(self, principal: Principal) -> None:
        """Refused (404) unless the caller sees the consult or was invited into the room."""
        person = self.participant(principal.id)
        invited = person is not None and person.role == ParticipantRole.INVITED
        check_room_read(principal, self.consult.parties, self.services, invited)


async def consult_of(session: AsyncSession, room: Room) -> RoomConsult:
    """The room's consult request and the hospital of the service it is booked with."""
    request, hospital_id = (
        await session.exec(
            select(ConsultRequest, PractitionerRole.organization_id)
            .join(Appointment, col(Appointment.request_id) == col(ConsultRequest.id))
            .join(
                PractitionerRole, col(PractitionerRole.id) == col(Appointment.practitioner_role_id)
            )
            .where(col(Appointment.id) == room.appointment_id)
        )
    ).one()
    return RoomConsult(parties(request), hospital_id, request.patient_id)


async def _seen(
    session: AsyncSession,
    caller: Caller,
    room_id: uuid.UUID,
    action: str,
    detail: str | None = None,
) -> SeenRoom:
    """The room with what decides access to it, the access noted for the audit log."""
    room = await load_room(session, room_id)
    consult = await consult_of(session, room)
    caller.note(action, "Room", room.id, patient_id=consult.patient_id, detail=detail)
    services = await caller_services(session, caller.principal)
    return SeenRoom(room, consult, services, await participants_of(session, room.id))


async def room_for_caller(
    session: AsyncSession, caller: Caller, room_id: uuid.UUID
) -> tuple[Room, list[RoomParticipant]]:
    """A room seen by those who see its consult, and by the people invited into it."""
    seen = await _seen(session, caller, room_id, "read")
    seen.check_read(caller.principal)
    return seen.room, seen.people


async def invite_participant(
    session: AsyncSession,
    caller: Caller,
    room_id: uuid.UUID,
    user_id: uuid.UUID,
) -> list[RoomParticipant]:
    """A coordinator adds a second specialist or an interpreter to a room not yet ended: only
    someone who could see the consult, or a specialist of the hospital holding it."""
    seen = await _seen(session, caller, room_id, "invite", detail=f"user {user_id}")
    check_room_invite(caller.principal, seen.consult.parties, seen.services)
    if seen.room.state == RoomState.ENDED:
        raise rules.RoomClosed("Phòng khám đã đóng. / The consult room is closed.")
    account = await session.get(UserAccount, user_id)
    if account is None or not account.active:
        raise InvalidInput.for_field("user_id", "no active account with this id")
    invitee = principal_of(account)
    invitee_services = await caller_services(session, invitee)
    if not may_be_invited(
        invitee, seen.consult.parties, invitee_services, seen.consult.hospital_id
    ):
        raise InvalidInput.for_field(
            "user_id",
            "only clinicians who may see this consult (of its requesting facility, or "
            "specialists of the hospital holding it) can be invited",
        )
    spec = ParticipantSpec(user_id, ParticipantRole.INVITED)
    await _add_participants(session, seen.room.id, [spec], added_by=caller.principal.id)
    return await participants_of(session, seen.room.id)


async def issue_join(
    session: AsyncSession, caller: Caller, settings: Settings, room_id: uuid.UUID
) -> JoinGrant:
    """A join token and ICE servers for a participant of a room that is open now."""
    now = utcnow()
    seen = await _seen(session, caller, room_id, "join-token")
    principal = caller.principal
    seen.check_read(principal)
    person = seen.participant(principal.id)
    if person is None:
        raise PermissionDenied(
            "Bạn không phải người tham gia buổi hội chẩn này. / "
            "You are not a participant of this consult."
        )
    room = seen.room
    rules.check_joinable(room.state, window_of(room), now)
    if rules.should_open(room.state, window_of(room), now):
        await _open(session, room, now)
    claims = JoinClaims(room.id, principal.id, person.role.value, principal.name)
    return JoinGrant(
        room=room,
        token=issue_join_token(settings, claims, now),
        ice_servers=ice_servers(settings, str(principal.id), now, room.closes_at),
        expires_in_s=settings.join_token_ttl_s,
    )


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
