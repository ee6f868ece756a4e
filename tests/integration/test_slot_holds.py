"""Slot holds through the HTTP API (issue 13, hole 3): a hold needs a consult request that may
book the slot, a request holds one slot at a time, holds expire, and a race for one slot's hold
has one winner. Who may hold, for whose request: the authorization matrix below."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from telehealth.availability.models import Slot, SlotStatus
from telehealth.db import Database
from telehealth.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.consult_support import (
    INTERNAL_MEDICINE,
    accepted_request,
    new_request,
    own_patients,
    publish_week,
    service_of,
    slots,
)
from tests.handler_support import fire
from tests.helpers import assert_problem, login


async def _hold(
    client: httpx.AsyncClient, headers: dict[str, str], slot_id: str, request_id: str | None
) -> httpx.Response:
    body = {} if request_id is None else {"request_id": request_id}
    return await client.post(f"/api/slots/{slot_id}/hold", json=body, headers=headers)


async def _cardiology_day(client: httpx.AsyncClient) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """bs.tim's headers and his free slots (weekly hours published)."""
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    return cardio, await slots(client, cardio, practitioner_role_id=role["id"], limit=50)


async def _held(db: Database, slot_ids: list[str]) -> list[str]:
    async with db.unit_of_work() as session:
        rows = await session.exec(
            select(Slot.id).where(
                col(Slot.id).in_([uuid.UUID(s) for s in slot_ids]),
                col(Slot.status) == SlotStatus.HELD,
                col(Slot.hold_until) > utcnow(),
            )
        )
        return [str(row) for row in rows.all()]


async def test_a_hold_needs_a_request_that_may_book_the_slot(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    cardio, free = await _cardiology_day(client)
    slot = free[0]["id"]
    patients = await own_patients(client, doctor)

    assert_problem(await _hold(client, doctor, slot, None), 400)
    assert_problem(await _hold(client, doctor, slot, str(uuid.uuid4())), 404)
    other = await login(client, "bs.xa2")
    theirs = await accepted_request(client, other, cardio, (await own_patients(client, other))[0])
    assert_problem(await _hold(client, doctor, slot, theirs["id"]), 404)
    waiting = await new_request(client, doctor, patients[0])  # not accepted: cannot be booked yet
    assert_problem(await _hold(client, doctor, slot, waiting["id"]), 409)
    internist = await login(client, "bs.noi")
    elsewhere = await accepted_request(
        client, doctor, internist, patients[1], specialty_code=INTERNAL_MEDICINE
    )
    assert_problem(await _hold(client, doctor, slot, elsewhere["id"]), 422, field="slot_id")
    assert slot in [s["id"] for s in await slots(client, doctor, specialty_code="394579002")]


async def test_one_request_holds_one_slot_and_the_day_stays_bookable(
    client: httpx.AsyncClient, db: Database
) -> None:
    """The probe of the issue: holding 15 slots one after the other with one request leaves
    one held (each hold replaces the request's previous one); others book the rest."""
    doctor = await login(client, "bs.xa1")
    cardio, free = await _cardiology_day(client)
    day = [s["id"] for s in free[:15]]
    mine = await accepted_request(client, doctor, cardio, (await own_patients(client, doctor))[0])
    for slot in day:
        held = await _hold(client, doctor, slot, mine["id"])
        assert held.status_code == 200 and held.json()["status"] == "held", held.text
    assert await _held(db, day) == [day[-1]]

    other = await login(client, "bs.xa2")
    theirs = await accepted_request(client, other, cardio, (await own_patients(client, other))[0])
    refused = await client.post(
        "/api/appointments", json={"request_id": theirs["id"], "slot_id": day[-1]}, headers=other
    )
    assert_problem(refused, 409)
    legit = await client.post(
        "/api/appointments", json={"request_id": theirs["id"], "slot_id": day[0]}, headers=other
    )
    assert legit.status_code == 201, legit.text
    mine_booked = await client.post(
        "/api/appointments", json={"request_id": mine["id"], "slot_id": day[-1]}, headers=doctor
    )
    assert mine_booked.status_code == 201, mine_booked.text


async def test_concurrent_holds_of_one_request_leave_one_slot_held(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio, free = await _cardiology_day(client)
    day = [s["id"] for s in free[:15]]
    mine = await accepted_request(client, doctor, cardio, (await own_patients(client, doctor))[0])
    start = asyncio.Event()

    async def hold(slot: str) -> httpx.Response:
        await start.wait()
        return await _hold(client, doctor, slot, mine["id"])

    tasks = [asyncio.create_task(hold(slot)) for slot in day]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    assert set(Counter(r.status_code for r in responses)) <= {200, 409}, [r.text for r in responses]
    assert len(await _held(db, day)) == 1


async def test_requests_racing_for_one_slot_have_one_holder(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio, free = await _cardiology_day(client)
    patients = await own_patients(client, doctor)
    requests = [
        (await accepted_request(client, doctor, cardio, patients[i % len(patients)]))["id"]
        for i in range(12)
    ]
    slot = free[2]["id"]
    start = asyncio.Event()

    async def hold(request_id: str) -> httpx.Response:
        await start.wait()
        return await _hold(client, doctor, slot, request_id)

    tasks = [asyncio.create_task(hold(r)) for r in requests]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    assert Counter(r.status_code for r in responses) == {200: 1, 409: len(requests) - 1}
    winner = requests[next(i for i, r in enumerate(responses) if r.status_code == 200)]
    loser = next(r for r in requests if r != winner)
    taken = await client.post(
        "/api/appointments", json={"request_id": loser, "slot_id": slot}, headers=doctor
    )
    assert_problem(taken, 409)
    booked = await client.post(
        "/api/appointments", json={"request_id": winner, "slot_id": slot}, headers=doctor
    )
    assert booked.status_code == 201, booked.text


async def test_a_hold_expires_and_its_timer_frees_the_slot(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio, free = await _cardiology_day(client)
    slot = free[0]["id"]
    mine = await accepted_request(client, doctor, cardio, (await own_patients(client, doctor))[0])
    held = await _hold(client, doctor, slot, mine["id"])
    assert held.status_code == 200, held.text
    assert await fire(db, settings, ["slot.hold_expire"], utcnow()) == []  # not due yet
    async with db.unit_of_work() as session:
        await session.exec(
            update(Slot).where(col(Slot.id) == uuid.UUID(slot)).values(hold_until=utcnow())
        )
    other = await login(client, "bs.xa2")
    theirs = await accepted_request(client, other, cardio, (await own_patients(client, other))[0])
    # Ran out: anyone's request may hold it again even before the timer has run.
    assert (await _hold(client, other, slot, theirs["id"])).status_code == 200
    async with db.unit_of_work() as session:
        await session.exec(
            update(Slot).where(col(Slot.id) == uuid.UUID(slot)).values(hold_until=utcnow())
        )
    assert len(await fire(db, settings, ["slot.hold_expire"])) == 2
    async with db.unit_of_work() as session:
        freed = await session.get(Slot, uuid.UUID(slot))
    assert freed is not None and freed.status == SlotStatus.FREE
    assert freed.held_by is None and freed.hold_until is None
    assert (await _hold(client, doctor, slot, mine["id"])).status_code == 200


async def _client_headers(client: httpx.AsyncClient, scope: str) -> dict[str, str]:
    token = await client.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "scope": scope,
        },
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_hold_authorization_matrix(client: httpx.AsyncClient) -> None:
    """Each role, for a request of its own (its facility's, assigned to it, its hospital's)
    and for another's. Allowed holds renew the one hold of that request."""
    doctor = await login(client, "bs.xa1")
    cardio, free = await _cardiology_day(client)
    slot = free[0]["id"]
    patients = await own_patients(client, doctor)
    own = await accepted_request(client, doctor, cardio, patients[0])
    # A request for the children's hospital: another hospital's coordinator may not see it.
    paediatrics = await login(client, "bs.nhi")
    nhi_role = await service_of(client, paediatrics)
    children = await accepted_request(
        client,
        doctor,
        paediatrics,
        patients[1],
        specialty_code="394537008",
        target_organization_id=nhi_role["organization_id"],
    )
    await publish_week(client, paediatrics, nhi_role["id"])
    nhi_slot = (await slots(client, paediatrics, practitioner_role_id=nhi_role["id"]))[0]["id"]

    cases: list[tuple[str, str, str, int]] = [
        # (who, request, slot, expected status)
        ("bs.xa1", own["id"], slot, 200),  # requester, own facility
        ("bs.xa2", own["id"], slot, 404),  # requester, another facility
        ("bs.tim", own["id"], slot, 200),  # the specialist it is assigned to
        ("bs.san", own["id"], slot, 404),  # another specialist of the hospital
        ("dieuphoi", own["id"], slot, 200),  # coordinator of the target hospital
        ("dieuphoi", children["id"], nhi_slot, 404),  # coordinator of another hospital
        ("bs.nhi", children["id"], nhi_slot, 200),  # assigned specialist, other hospital
        ("quantri", own["id"], slot, 404),  # administrators do not handle consults
    ]
    for username, request_id, slot_id, expected in cases:
        response = await _hold(client, await login(client, username), slot_id, request_id)
        if expected == 200:
            assert response.status_code == 200, (username, response.text)
        else:
            assert_problem(response, expected)
    reader = await _client_headers(client, "system/Patient.rs")
    assert_problem(await _hold(client, reader, slot, own["id"]), 403)
