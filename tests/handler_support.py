"""Shared by the timer-handler tests: fire the registered handlers through the engine, read
timers and notifications, book a consult through the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from telehealth.db import Database
from telehealth.notifications.models import Notification
from telehealth.settings import Settings
from telehealth.timer_registry import timer_handlers
from telehealth.timers.engine import TimerEngine
from telehealth.timers.handlers import TimerCall, run_handler
from telehealth.timers.models import Timer, TimerState
from telehealth.timeutil import utcnow
from tests.consult_support import (
    accepted_request,
    own_patients,
    publish_week,
    service_of,
    slots,
    well_ahead,
)
from tests.helpers import login

LATER = timedelta(days=60)  # far enough for any timer written by a test to be due


async def fire(
    db: Database, settings: Settings, kinds: Iterable[str], moment: datetime | None = None
) -> list[TimerCall]:
    """Claim and fire, through the engine, the timers of ``kinds`` due by ``moment`` (timers
    those handlers write are claimed by the next call, not this one)."""
    handlers = timer_handlers(settings)
    engine = TimerEngine(db, settings, {kind: handlers[kind] for kind in kinds})
    calls = await engine.claim(moment or utcnow() + LATER)
    assert await engine.fire(calls, moment) == len(calls)
    return calls


async def run_again(db: Database, settings: Settings, call: TimerCall) -> None:
    """Run one timer's handler once more, as a re-claim after a lost lease would."""
    async with db.unit_of_work() as session:
        await run_handler(timer_handlers(settings)[call.kind], session, [call])


def call_of(timer: Timer) -> TimerCall:
    return TimerCall(
        timer.id, timer.kind, timer.subject_id, timer.due_at, timer.attempts, dict(timer.payload)
    )


async def timers_of(db: Database, subject: str | uuid.UUID, kind: str | None = None) -> list[Timer]:
    statement = select(Timer).where(col(Timer.subject_id) == uuid.UUID(str(subject)))
    if kind:
        statement = statement.where(col(Timer.kind) == kind)
    async with db.unit_of_work() as session:
        return list((await session.exec(statement.order_by(col(Timer.due_at)))).all())


def pending(timers: list[Timer]) -> list[Timer]:
    return [t for t in timers if t.state == TimerState.PENDING]


async def notifications(db: Database, subject: str | uuid.UUID, kind: str) -> list[Notification]:
    async with db.unit_of_work() as session:
        rows = await session.exec(
            select(Notification).where(
                col(Notification.subject_id) == uuid.UUID(str(subject)),
                col(Notification.kind) == kind,
            )
        )
        return list(rows.all())


async def booked(
    client: httpx.AsyncClient, patient_index: int = 0, *, publish: bool = True
) -> dict[str, Any]:
    """bs.xa1's patient booked with bs.tim in the first free slot; the appointment, with the
    logins and the other free slots."""
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    if publish:
        await publish_week(client, cardio, role["id"])
    patients = await own_patients(client, doctor)
    request = await accepted_request(client, doctor, cardio, patients[patient_index])
    free = await slots(client, doctor, practitioner_role_id=role["id"])
    chosen = well_ahead(free)
    free.remove(chosen)
    free.insert(0, chosen)
    response = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": free[0]["id"]},
        headers=doctor,
    )
    assert response.status_code == 201, response.text
    appointment: dict[str, Any] = response.json()
    return {
        "appointment": appointment,
        "doctor": doctor,
        "cardio": cardio,
        "free": free[1:],
        "request": request,
        "role": role,
    }
