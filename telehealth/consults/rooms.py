"""A consult's video room as people reach it: who may see it, join it or invite someone into
it follows the consult (its parties and the hospital it is booked at); ``telehealth.rtc`` keeps
the rooms themselves and knows nothing of consults."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import (
    ConsultParties,
    Service,
    check_room_invite,
    check_room_read,
    may_be_invited,
)
from telehealth.auth.login import principal_of
from telehealth.auth.models import UserAccount
from telehealth.auth.principal import Caller, Principal
from telehealth.consults import rules
from telehealth.consults.booking import get_appointment
from telehealth.consults.models import Appointment, ConsultRequest
from telehealth.consults.parties import caller_services, parties
from telehealth.consults.service import load_request, practitioner_accounts
from telehealth.directory.models import PractitionerRole
from telehealth.errors import InvalidInput, NotFound, PermissionDenied
from telehealth.rtc import rules as room_rules
from telehealth.rtc.credentials import JoinClaims, ice_servers, issue_join_token
from telehealth.rtc.models import ParticipantRole, Room, RoomParticipant, RoomState
from telehealth.rtc.rules import RoomClosed
from telehealth.rtc.service import (
    JoinGrant,
    ParticipantSpec,
    add_participants,
    load_room,
    open_now,
    open_room_for,
    participants_of,
    window_of,
)
from telehealth.settings import Settings
from telehealth.timeutil import utcnow


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
        raise RoomClosed("Phòng khám đã đóng. / The consult room is closed.")
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
    await add_participants(session, seen.room.id, [spec], added_by=caller.principal.id)
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
    room_rules.check_joinable(room.state, window_of(room), now)
    if room_rules.should_open(room.state, window_of(room), now):
        await open_now(session, room, now)
    claims = JoinClaims(room.id, principal.id, person.role.value, principal.name)
    return JoinGrant(
        room=room,
        token=issue_join_token(settings, claims, now),
        ice_servers=ice_servers(settings, str(principal.id), now, room.closes_at),
        expires_in_s=settings.join_token_ttl_s,
    )


async def patient_of_room(session: AsyncSession, room_id: uuid.UUID) -> uuid.UUID:
    """The patient whose consult the room is for."""
    patient = (
        await session.exec(
            select(Appointment.patient_id)
            .join(Room, col(Room.appointment_id) == col(Appointment.id))
            .where(col(Room.id) == room_id)
        )
    ).first()
    if patient is None:
        raise NotFound("No such room")
    return patient
