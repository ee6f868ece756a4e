"""Appointment timers fired for real: reminders follow the booking, rooms open, no-shows only
when nobody joined, holds expire, and the daily jobs. Handlers run through the engine
(``tests.handler_support.fire``); a second run of the same timer changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import delete, update
from sqlmodel import col, func, select

from telehealth.availability.models import Slot, SlotStatus
from telehealth.consults.models import Appointment, ConsultRequest, ConsultTransition
from telehealth.db import Database
from telehealth.rtc.models import Room, RoomParticipant, RoomState, SessionEventKind
from telehealth.rtc.service import record_event
from telehealth.settings import Settings
from telehealth.timers.models import TimerState
from telehealth.timers.service import schedule
from telehealth.timeutil import utcnow
from tests.consult_support import own_patients, request_body
from tests.handler_support import (
    booked,
    call_of,
    fire,
    notifications,
    pending,
    run_again,
    timers_of,
)
from tests.helpers import login
from tests.rtc_support import make_room, user_id

REMINDER = "appointment.reminder"


def start_of(appointment: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(appointment["starts_at"]))


async def test_rescheduling_moves_reminders_and_the_old_ones_do_nothing(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await booked(client)
    appointment = made["appointment"]
    first = pending(await timers_of(db, appointment["id"], REMINDER))
    assert [t.payload["lead_minutes"] for t in first] == [1440, 15] or start_of(
        appointment
    ) - utcnow() < timedelta(days=1)
    assert all(
        t.due_at == start_of(appointment) - timedelta(minutes=t.payload["lead_minutes"])
        for t in first
    )

    moved = await client.post(
        f"/api/appointments/{appointment['id']}/reschedule",
        json={"slot_id": made["free"][-1]["id"], "reason": "Bác sĩ bận"},
        headers=made["doctor"],
    )
    assert moved.status_code == 200, moved.text
    new_start = start_of(moved.json())
    after = await timers_of(db, appointment["id"], REMINDER)
    assert {t.id for t in after if t.state == TimerState.CANCELLED} == {t.id for t in first}
    assert {t.due_at for t in pending(after)} == {
        new_start - timedelta(minutes=lead) for lead in (1440, 15)
    }
    for old in first:  # a reminder written for the old time, run anyway: nothing
        await run_again(db, settings, call_of(old))
    assert await notifications(db, appointment["id"], REMINDER) == []

    calls = await fire(db, settings, [REMINDER], new_start)
    assert len(calls) == 2
    sent = await notifications(db, appointment["id"], REMINDER)
    requester, specialist = await user_id(db, "bs.xa1"), await user_id(db, "bs.tim")
    assert sorted((n.recipient_id, n.params["lead_minutes"]) for n in sent) == sorted(
        (person, lead) for person in (requester, specialist) for lead in (1440, 15)
    )
    assert {n.params["starts_at"] for n in sent} == {new_start.isoformat()}
    for call in calls:  # idempotent: the same timer again writes nothing more
        await run_again(db, settings, call)
    assert len(await notifications(db, appointment["id"], REMINDER)) == 4


async def test_cancelling_cancels_reminders_and_invited_people_are_reminded(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await booked(client)
    appointment_id = made["appointment"]["id"]
    coordinator = await login(client, "dieuphoi")
    async with db.unit_of_work() as session:
        room = (
            await session.exec(
                select(Room).where(col(Room.appointment_id) == uuid.UUID(appointment_id))
            )
        ).one()
        people = await session.exec(
            select(RoomParticipant.role).where(RoomParticipant.room_id == room.id)
        )
        assert sorted(people.all()) == ["requester", "specialist"]  # the room exists from booking
    san = await user_id(db, "bs.san")  # a colleague at the hospital holding the consult
    invited = await client.post(
        f"/api/rooms/{room.id}/participants", json={"user_id": str(san)}, headers=coordinator
    )
    assert invited.status_code in (200, 201), invited.text
    reminders = pending(await timers_of(db, appointment_id, REMINDER))
    await run_again(db, settings, call_of(reminders[-1]))
    reminded = {n.recipient_id for n in await notifications(db, appointment_id, REMINDER)}
    assert san in reminded and len(reminded) == 3

    cancelled = await client.post(
        f"/api/appointments/{appointment_id}/cancel",
        json={"reason": "Bệnh nhân chuyển viện"},
        headers=made["cardio"],
    )
    assert cancelled.status_code == 200, cancelled.text
    assert pending(await timers_of(db, appointment_id)) == []
    assert await fire(db, settings, [REMINDER, "room.open", "appointment.no_show"]) == []
    await run_again(db, settings, call_of(reminders[0]))  # fired anyway: nothing
    assert len(await notifications(db, appointment_id, REMINDER)) == 3


async def test_room_opens_when_its_timer_fires_in_the_window(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await booked(client)
    appointment_id = uuid.UUID(made["appointment"]["id"])
    soon = utcnow().replace(microsecond=0) + timedelta(minutes=5)
    async with db.unit_of_work() as session:  # the clock has moved on: the consult is soon
        await session.exec(
            update(Appointment)
            .where(col(Appointment.id) == appointment_id)
            .values(starts_at=soon, ends_at=soon + timedelta(minutes=30))
        )
        schedule(session, "room.open", appointment_id, utcnow(), {"starts_at": soon.isoformat()})
    assert len(await fire(db, settings, ["room.open"], utcnow())) == 1
    async with db.unit_of_work() as session:
        room = (
            await session.exec(select(Room).where(col(Room.appointment_id) == appointment_id))
        ).one()
    assert room.state == RoomState.OPEN and room.starts_at == soon
    assert room.opens_at == soon - timedelta(seconds=settings.room_open_before_s)


async def test_no_show_only_when_nobody_joined(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    empty = await booked(client, 0)
    joined = await booked(client, 1, publish=False)
    requester = await user_id(db, "bs.xa1")
    async with db.unit_of_work() as session:
        room = (
            await session.exec(
                select(Room).where(
                    col(Room.appointment_id) == uuid.UUID(joined["appointment"]["id"])
                )
            )
        ).one()
        record_event(session, room.id, requester, SessionEventKind.JOIN)
    calls = await fire(db, settings, ["appointment.no_show"])
    assert len(calls) == 2
    for call in calls:
        await run_again(db, settings, call)
    async with db.unit_of_work() as session:
        nobody = await session.get(Appointment, uuid.UUID(empty["appointment"]["id"]))
        somebody = await session.get(Appointment, uuid.UUID(joined["appointment"]["id"]))
        request = await session.get(ConsultRequest, uuid.UUID(empty["request"]["id"]))
        no_shows = (
            await session.exec(
                select(func.count())
                .select_from(ConsultTransition)
                .where(col(ConsultTransition.action) == "no_show")
            )
        ).one()
    assert nobody is not None and nobody.status == "no_show"
    assert somebody is not None and somebody.status == "booked"
    assert request is not None and request.status == "accepted"
    assert no_shows == 1
    told = await notifications(db, empty["appointment"]["id"], "appointment.no_show")
    assert len(told) == 2
    assert await notifications(db, joined["appointment"]["id"], "appointment.no_show") == []


async def test_expired_hold_is_released_by_its_timer(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await booked(client)
    slot_id = made["free"][0]["id"]
    held = await client.post(
        f"/api/slots/{slot_id}/hold",
        json={"request_id": made["appointment"]["request_id"]},
        headers=made["doctor"],
    )
    assert held.status_code == 200, held.text
    assert await fire(db, settings, ["slot.hold_expire"], utcnow()) == []  # not due yet
    async with db.unit_of_work() as session:
        await session.exec(
            update(Slot).where(col(Slot.id) == uuid.UUID(slot_id)).values(hold_until=utcnow())
        )
    assert len(await fire(db, settings, ["slot.hold_expire"])) == 1
    async with db.unit_of_work() as session:
        slot = await session.get(Slot, uuid.UUID(slot_id))
    assert slot is not None and slot.status == SlotStatus.FREE and slot.held_by is None
    assert slot.held_for_request_id is None


async def test_daily_jobs_extend_horizons_expire_drafts_close_rooms(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await booked(client)
    role_id = uuid.UUID(made["role"]["id"])
    cut = utcnow() + timedelta(days=14)
    count = select(func.count()).select_from(Slot).where(col(Slot.practitioner_role_id) == role_id)
    async with db.unit_of_work() as session:
        before = (await session.exec(count)).one()
        await session.exec(
            delete(Slot).where(
                col(Slot.practitioner_role_id) == role_id,
                col(Slot.starts_at) > cut,
                col(Slot.status) == SlotStatus.FREE,
            )
        )
        assert (await session.exec(count)).one() < before
    doctor = made["doctor"]
    patient = (await own_patients(client, doctor))[2]
    draft = await client.post(
        "/api/consults", json=request_body(patient, submit=False), headers=doctor
    )
    fresh = await client.post(
        "/api/consults", json=request_body(patient, submit=False), headers=doctor
    )
    assert draft.status_code == fresh.status_code == 201
    async with db.unit_of_work() as session:
        await session.exec(
            update(ConsultRequest)
            .where(col(ConsultRequest.id) == uuid.UUID(draft.json()["id"]))
            .values(created_at=utcnow() - timedelta(days=settings.draft_stale_days + 1))
        )
    over = await make_room(db, settings, starts_in=timedelta(hours=-3))

    async with db.unit_of_work() as session:
        for kind in (
            "daily.extend_slot_horizon",
            "daily.expire_stale_drafts",
            "daily.close_expired_rooms",
        ):
            schedule(session, kind, uuid.uuid4(), utcnow())
    kinds = ["daily.extend_slot_horizon", "daily.expire_stale_drafts", "daily.close_expired_rooms"]
    assert len(await fire(db, settings, kinds, utcnow())) == 3
    async with db.unit_of_work() as session:
        assert (await session.exec(count)).one() == before
        stale = await session.get(ConsultRequest, uuid.UUID(draft.json()["id"]))
        kept = await session.get(ConsultRequest, uuid.UUID(fresh.json()["id"]))
        room = await session.get(Room, over.room_id)
    assert stale is not None and stale.status == "cancelled"
    assert kept is not None and kept.status == "draft"
    assert room is not None and room.state == RoomState.ENDED
