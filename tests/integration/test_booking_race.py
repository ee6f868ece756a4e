"""Races through the HTTP API: many people booking one slot, or overlapping slots of one
specialist, at the same moment. Exactly one wins; the others get 409 and nothing is written."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select

from telehealth.consults.models import Appointment, ConsultRequest, ConsultStatus
from telehealth.db import Database
from telehealth.notifications.models import Notification
from telehealth.timers.models import Timer
from tests.consult_support import (
    INTERNAL_MEDICINE,
    accepted_request,
    me,
    own_patients,
    publish_week,
    service_of,
    slots,
)
from tests.helpers import login

pytestmark = pytest.mark.slow
RACERS = 50


async def _accepted_requests(
    client: httpx.AsyncClient, specialist: dict[str, str], count: int, **changes: Any
) -> list[str]:
    doctor = await login(client, "bs.xa1")
    patients = await own_patients(client, doctor)
    return [
        (
            await accepted_request(
                client, doctor, specialist, patients[i % len(patients)], **changes
            )
        )["id"]
        for i in range(count)
    ]


async def _race(client: httpx.AsyncClient, attempts: list[tuple[str, str]]) -> list[httpx.Response]:
    doctor = await login(client, "bs.xa1")
    start = asyncio.Event()

    async def book(request_id: str, slot_id: str) -> httpx.Response:
        await start.wait()
        return await client.post(
            "/api/appointments",
            json={"request_id": request_id, "slot_id": slot_id},
            headers=doctor,
        )

    tasks = [asyncio.create_task(book(r, s)) for r, s in attempts]
    await asyncio.sleep(0.05)
    start.set()
    return await asyncio.gather(*tasks)


async def _assert_one_winner(responses: list[httpx.Response], db: Database) -> None:
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: RACERS - 1}, [
        r.text for r in responses if r.status_code != 409
    ]
    for loser in (r for r in responses if r.status_code == 409):
        assert loser.json()["detail"] == "Khung giờ không còn trống / slot no longer available"
    winner = next(r.json() for r in responses if r.status_code == 201)
    async with db.unit_of_work() as session:
        appointments = (await session.exec(select(Appointment))).all()
        scheduled = (
            await session.exec(
                select(ConsultRequest.id).where(ConsultRequest.status == ConsultStatus.SCHEDULED)
            )
        ).all()
        timers = (
            await session.exec(
                select(func.count()).select_from(Timer).where(col(Timer.kind) != "request.escalate")
            )
        ).one()
        notified = (
            await session.exec(
                select(func.count())
                .select_from(Notification)
                .where(col(Notification.kind) == "appointment.booked")
            )
        ).one()
    assert [str(a.id) for a in appointments] == [winner["id"]]
    assert [str(r) for r in scheduled] == [winner["request_id"]]
    assert timers >= 1 and notified == 2  # only the winner's timers and notifications exist


async def test_fifty_bookings_of_one_slot(client: httpx.AsyncClient, db: Database) -> None:
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    requests = await _accepted_requests(client, cardio, RACERS)
    slot = (await slots(client, cardio, practitioner_role_id=role["id"]))[3]

    responses = await _race(client, [(request_id, slot["id"]) for request_id in requests])

    await _assert_one_winner(responses, db)


async def test_fifty_bookings_of_two_overlapping_slots(
    client: httpx.AsyncClient, db: Database
) -> None:
    admin = await login(client, "quantri")
    cardio = await login(client, "bs.tim")
    cardiology = await service_of(client, cardio)
    added = await client.post(
        "/api/practitioner-roles",
        json={
            "practitioner_id": (await me(client, cardio))["practitioner_id"],
            "organization_id": cardiology["organization_id"],
            "specialty_code": INTERNAL_MEDICINE,
        },
        headers=admin,
    )
    assert added.status_code == 201, added.text
    internal = added.json()
    await publish_week(client, cardio, cardiology["id"], "08:00", "10:00", 30)
    await publish_week(client, cardio, internal["id"], "08:15", "10:15", 30)
    first = await slots(client, cardio, practitioner_role_id=cardiology["id"])
    second = await slots(client, cardio, practitioner_role_id=internal["id"])
    a, b = next(
        (x, y)
        for x in first[2:]
        for y in second
        if x["starts_at"] < y["ends_at"] and y["starts_at"] < x["ends_at"]
    )
    half = RACERS // 2
    cardiology_requests = await _accepted_requests(client, cardio, half)
    internal_requests = await _accepted_requests(
        client, cardio, RACERS - half, specialty_code=INTERNAL_MEDICINE
    )
    attempts = [(r, a["id"]) for r in cardiology_requests] + [
        (r, b["id"]) for r in internal_requests
    ]
    attempts = [attempts[i // 2 + (i % 2) * half] for i in range(RACERS)]  # interleave

    responses = await _race(client, attempts)

    await _assert_one_winner(responses, db)
    async with db.unit_of_work() as session:
        booked = (await session.exec(select(Appointment.slot_id))).all()
    assert {str(s) for s in booked} <= {a["id"], b["id"]}
    assert uuid.UUID(a["id"]) != uuid.UUID(b["id"])


async def test_twenty_accepts_of_one_request_have_one_winner(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    created = await client.post(
        "/api/consults",
        json={
            "patient_id": (await own_patients(client, doctor))[0],
            "activity_type": "tele_advice",
            "specialty_code": "394579002",
            "priority": "emergency",
            "reason": "Đau ngực cấp",
            "clinical_summary": "ST chênh lên",
        },
        headers=doctor,
    )
    request_id = created.json()["id"]
    start = asyncio.Event()

    async def accept() -> httpx.Response:
        await start.wait()
        return await client.post(f"/api/consults/{request_id}/accept", json={}, headers=cardio)

    tasks = [asyncio.create_task(accept()) for _ in range(20)]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    assert Counter(r.status_code for r in responses) == {200: 1, 409: 19}
    assert all("accepted" in r.json()["detail"] for r in responses if r.status_code == 409)
    history = (await client.get(f"/api/consults/{request_id}/history", headers=doctor)).json()
    assert [h["action"] for h in history] == ["submit", "accept"]
