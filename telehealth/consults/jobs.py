"""Timer handlers of appointments, holds and drafts, and the daily jobs (registered in
``telehealth/timer_registry.py``; how they are run: docs/timers.md).

Each acts only while the state is still what its timer expected, so running one again (a
re-claimed timer, a moved appointment's old timer) changes nothing. They write rows only:
messages are notification rows, delivered afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.availability.models import AvailabilityRule
from telehealth.availability.service import regenerate_slots, release_expired_hold
from telehealth.consults.booking import no_show_if_unattended
from telehealth.consults.models import Appointment, AppointmentStatus, ConsultRequest, ConsultStatus
from telehealth.consults.participants import appointment_people, booked_participants, sync_room
from telehealth.consults.service import practitioner_accounts, transition
from telehealth.directory.models import PractitionerRole
from telehealth.errors import InvalidTransition
from telehealth.notifications.models import Channel, Notification
from telehealth.notifications.service import notify
from telehealth.rtc.presence import session_times
from telehealth.rtc.service import close_expired_rooms
from telehealth.settings import Settings
from telehealth.timers.handlers import TimerCall
from telehealth.timeutil import utcnow

REMINDER = "appointment.reminder"
STALE_DRAFT_REASON = "Bản nháp quá hạn, tự động hủy / stale draft, cancelled automatically"


async def _still_booked(session: AsyncSession, call: TimerCall) -> Appointment | None:
    """The appointment, if it is still booked at the start its timer was written for."""
    appointment = await session.get(Appointment, call.subject_id)
    if appointment is None or appointment.status != AppointmentStatus.BOOKED:
        return None
    planned = call.payload.get("starts_at")
    if planned is not None and datetime.fromisoformat(planned) != appointment.starts_at:
        return None  # written for a start the appointment has since moved from
    return appointment


async def send_reminder(session: AsyncSession, call: TimerCall) -> None:
    """appointment.reminder: tell every participant (in-app, and by e-mail to those with an
    address), in their language, once per lead time and start."""
    appointment = await _still_booked(session, call)
    if appointment is None:
        return
    lead = int(call.payload.get("lead_minutes", 0))
    params = {"starts_at": appointment.starts_at.isoformat(), "lead_minutes": lead}
    sent = await session.exec(
        select(Notification.params).where(
            col(Notification.subject_id) == appointment.id, col(Notification.kind) == REMINDER
        )
    )
    if any(
        p.get("lead_minutes") == lead and p.get("starts_at") == params["starts_at"]
        for p in sent.all()
    ):
        return  # this reminder was written already
    request = await session.get(ConsultRequest, appointment.request_id)
    if request is None:
        return
    for person in await appointment_people(session, appointment, request.requester_id):
        notify(session, REMINDER, recipient_id=person.id, subject_id=appointment.id, params=params)
        if person.email:
            notify(
                session,
                REMINDER,
                recipient_id=person.id,
                subject_id=appointment.id,
                channel=Channel.EMAIL,
                params=params,
            )


async def open_room(session: AsyncSession, call: TimerCall, settings: Settings) -> None:
    """room.open: make sure the room exists with the booking's times and people, and open it
    (``open_room_for`` opens it once its window has begun; repeating it changes nothing)."""
    appointment = await _still_booked(session, call)
    if appointment is None:
        return
    request = await session.get(ConsultRequest, appointment.request_id)
    if request is None:
        return
    accounts = await practitioner_accounts(session, appointment.practitioner_id)
    await sync_room(
        session, appointment, booked_participants(request.requester_id, accounts), settings
    )


async def mark_no_show(session: AsyncSession, call: TimerCall) -> None:
    """appointment.no_show: still booked after the start and nobody joined its room: no-show
    (both sides are told by ``no_show_if_unattended``). Anyone joined: nothing."""
    if await _still_booked(session, call) is None:
        return
    times = await session_times(session, call.subject_id)
    if times is not None and times.joined:
        return
    await no_show_if_unattended(session, call.subject_id)


async def expire_hold(session: AsyncSession, call: TimerCall) -> None:
    """slot.hold_expire: free the slot if its hold ran out (a renewed or booked one stays)."""
    await release_expired_hold(session, call.subject_id)


# Daily jobs -----------------------------------------------------------------------------------


async def extend_slot_horizons(session: AsyncSession, call: TimerCall, settings: Settings) -> None:
    """Regenerate the slots of every active service that publishes availability, so the
    horizon moves forward a day (idempotent: free slots only)."""
    roles = await session.exec(
        select(AvailabilityRule.practitioner_role_id)
        .join(
            PractitionerRole, col(PractitionerRole.id) == col(AvailabilityRule.practitioner_role_id)
        )
        .where(col(PractitionerRole.active).is_(True))
        .group_by(col(AvailabilityRule.practitioner_role_id))
        .order_by(col(AvailabilityRule.practitioner_role_id))
    )
    for role_id in roles.all():
        await regenerate_slots(session, role_id, settings)


async def expire_stale_drafts(session: AsyncSession, call: TimerCall, settings: Settings) -> None:
    """Cancel drafts nobody submitted within ``draft_stale_days`` (a system transition each)."""
    cutoff = utcnow() - timedelta(days=settings.draft_stale_days)
    drafts = await session.exec(
        select(ConsultRequest).where(
            col(ConsultRequest.status) == ConsultStatus.DRAFT,
            col(ConsultRequest.created_at) < cutoff,
        )
    )
    for draft in drafts.all():
        try:
            await transition(
                session, None, draft, "cancel", STALE_DRAFT_REASON, status_reason=STALE_DRAFT_REASON
            )
        except InvalidTransition:
            continue  # submitted meanwhile


async def close_expired_rooms_daily(session: AsyncSession, call: TimerCall) -> None:
    """End every room whose grace period is over (rooms nobody closed)."""
    await close_expired_rooms(session)
