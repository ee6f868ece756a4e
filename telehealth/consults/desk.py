"""Use cases the web desk needs beyond the API's: joining a booked consult's video room,
and who should see a request change on their open pages."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import require_role
from telehealth.auth.models import Role, UserAccount
from telehealth.auth.principal import Caller
from telehealth.consults import rules
from telehealth.consults.booking import get_appointment
from telehealth.consults.models import Appointment, AppointmentStatus, ConsultRequest
from telehealth.consults.service import load_request, practitioner_accounts
from telehealth.directory.models import PractitionerRole
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


async def watchers(session: AsyncSession, request_id: uuid.UUID) -> list[uuid.UUID]:
    """Accounts whose queue or board shows the request: its requester, the specialists of its
    specialty at its target (any provincial hospital when untargeted) or assigned to it, and
    the coordinators of those hospitals. Their open pages are told when it changes."""
    request: ConsultRequest = await load_request(session, request_id)
    roles = select(PractitionerRole.practitioner_id, PractitionerRole.organization_id).where(
        PractitionerRole.specialty_id == request.specialty_id, col(PractitionerRole.active)
    )
    if request.target_organization_id is not None:
        roles = roles.where(PractitionerRole.organization_id == request.target_organization_id)
    found = (await session.exec(roles)).all()
    practitioners = {p for p, _ in found}
    if request.assigned_practitioner_id:
        practitioners.add(request.assigned_practitioner_id)
    hospitals = {o for _, o in found}
    if request.target_organization_id is not None:
        hospitals.add(request.target_organization_id)
    accounts = await session.exec(
        select(UserAccount.id).where(
            col(UserAccount.active),
            or_(
                col(UserAccount.practitioner_id).in_(practitioners),
                (col(UserAccount.role) == Role.COORDINATOR)
                & col(UserAccount.organization_id).in_(hospitals),
            ),
        )
    )
    return sorted({request.requester_id, *accounts.all()})


async def agenda(
    session: AsyncSession,
    caller: Caller,
    starts_after: datetime,
    starts_before: datetime,
    statuses: tuple[AppointmentStatus, ...] = (
        AppointmentStatus.BOOKED,
        AppointmentStatus.IN_PROGRESS,
        AppointmentStatus.COMPLETED,
    ),
) -> list[tuple[Appointment, ConsultRequest]]:
    """Appointments in a time range the caller takes part in or oversees: a specialist's own,
    a coordinator's hospital's, a requester's facility's."""
    principal = caller.principal
    require_role(principal, Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR)
    caller.note("search", "Appointment", detail=f"{starts_after:%Y-%m-%d} agenda")
    statement = (
        select(Appointment, ConsultRequest)
        .join(ConsultRequest, col(ConsultRequest.id) == col(Appointment.request_id))
        .where(
            col(Appointment.starts_at) >= starts_after,
            col(Appointment.starts_at) < starts_before,
            col(Appointment.status).in_(statuses),
        )
    )
    if principal.role == Role.SPECIALIST:
        statement = statement.where(Appointment.practitioner_id == principal.practitioner_id)
    elif principal.role == Role.COORDINATOR:
        statement = statement.join(
            PractitionerRole, col(PractitionerRole.id) == col(Appointment.practitioner_role_id)
        ).where(PractitionerRole.organization_id == principal.organization_id)
    else:
        statement = statement.where(
            ConsultRequest.requesting_organization_id == principal.organization_id
        )
    rows = (await session.exec(statement.order_by(col(Appointment.starts_at)).limit(200))).all()
    return [(a, r) for a, r in rows]
