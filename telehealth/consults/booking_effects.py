"""What a booked (or rescheduled) appointment writes beside itself, in the same transaction:
its timers (reminders, room opening, no-show check), its video room with the people in it,
and the participants' notifications. A booking is the hot path (issue 3's target), so each
kind of row is one multi-row statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.consults import rules
from telehealth.consults.models import Appointment, ConsultRequest
from telehealth.consults.participants import booked_participants, sync_room
from telehealth.consults.service import practitioner_accounts
from telehealth.notifications.service import notify_people
from telehealth.settings import Settings
from telehealth.timers.service import schedule_all


async def write_appointment_side_effects(
    session: AsyncSession,
    request: ConsultRequest,
    appointment: Appointment,
    kind: str,
    now: datetime,
    settings: Settings,
    accounts: Sequence[uuid.UUID] | None = None,
) -> None:
    """Timers, room and notifications of a (re)booked appointment; ``accounts`` are the
    specialist's user accounts when the caller has them already (one query fewer)."""
    if accounts is None:
        accounts = await practitioner_accounts(session, appointment.practitioner_id)
    s = settings
    planned = rules.appointment_timers(
        appointment.starts_at,
        now,
        s.reminder_leads_min,
        timedelta(seconds=s.room_open_before_s),
        timedelta(seconds=s.no_show_after_s),
    )
    await schedule_all(session, appointment.id, planned)
    await sync_room(session, appointment, booked_participants(request.requester_id, accounts), s)
    await notify_people(
        session,
        kind,
        [request.requester_id, *accounts],
        subject_id=appointment.id,
        params={"starts_at": appointment.starts_at.isoformat(), "request_id": str(request.id)},
    )
