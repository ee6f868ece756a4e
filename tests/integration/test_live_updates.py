"""A booking tells the open pages of the people who see the request, whichever edge made it:
the /api route, the web page's form and FHIR ``$book`` all go through the same use case,
whose journal the application's after-commit listener hears (``telehealth.reactions``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets
from sqlmodel import col, select

from telehealth.auth.models import Role, UserAccount
from telehealth.consults.watchers import watchers
from telehealth.db import Database
from tests.conftest import RunningServer
from tests.consult_support import (
    accepted_request,
    new_request,
    own_patients,
    publish_week,
    service_of,
)
from tests.e2e.fhir_support import FHIR_JSON
from tests.helpers import login
from tests.integration.test_web_session import csrf_token, page_login

Book = Callable[[httpx.AsyncClient, dict[str, str], str, str], Awaitable[None]]


async def _booked_page_hears(client: httpx.AsyncClient, server: RunningServer, book: Book) -> None:
    """The specialist's open page (``/ws/updates``) hears ``appointment.booked`` of the request
    the requesting doctor books through ``book``; nothing else is on the way meanwhile."""
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    await publish_week(client, cardio, (await service_of(client, cardio))["id"])
    patient = (await own_patients(client, doctor))[0]
    request_id = (await accepted_request(client, doctor, cardio, patient))["id"]
    slots = await client.get(f"/api/consults/{request_id}/slots", headers=doctor)
    assert slots.status_code == 200, slots.text
    slot_id = slots.json()[0]["id"]
    ws = server.url.replace("http://", "ws://")
    token = cardio["Authorization"].split()[1]
    async with websockets.connect(f"{ws}/ws/updates?access_token={token}") as page:
        assert json.loads(await page.recv()) == {"kind": "ready"}
        await book(client, doctor, request_id, slot_id)
        heard = json.loads(await asyncio.wait_for(page.recv(), 5))
        assert heard == {"kind": "appointment.booked", "id": request_id}
    appointments = await client.get(f"/api/consults/{request_id}/appointments", headers=doctor)
    assert [a["slot_id"] for a in appointments.json()] == [slot_id]


async def _through_api(
    client: httpx.AsyncClient, doctor: dict[str, str], request_id: str, slot_id: str
) -> None:
    body = {"request_id": request_id, "slot_id": slot_id}
    booked = await client.post("/api/appointments", json=body, headers=doctor)
    assert booked.status_code == 201, booked.text


async def _through_web_page(
    client: httpx.AsyncClient, _doctor: dict[str, str], request_id: str, slot_id: str
) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    token = await csrf_token(client, f"/consults/{request_id}")
    booked = await client.post(
        f"/consults/{request_id}/book", data={"_csrf_token": token, "slot_id": slot_id}
    )
    assert booked.status_code == 303, booked.text


async def _through_fhir_book(
    client: httpx.AsyncClient, doctor: dict[str, str], request_id: str, slot_id: str
) -> None:
    appointment: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "proposed",
        "slot": [{"reference": f"Slot/{slot_id}"}],
        "basedOn": [{"reference": f"ServiceRequest/{request_id}"}],
    }
    booked = await client.post(
        "/fhir/Appointment/$book",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "appointment", "resource": appointment}],
        },
        headers={**doctor, "Content-Type": FHIR_JSON},
    )
    assert booked.status_code == 201, booked.text


async def test_an_api_booking_updates_open_pages(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    await _booked_page_hears(client, server, _through_api)


async def test_a_web_page_booking_updates_open_pages(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    await _booked_page_hears(client, server, _through_web_page)


async def test_a_fhir_book_updates_open_pages(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    await _booked_page_hears(client, server, _through_fhir_book)


async def _queues_showing(client: httpx.AsyncClient, db: Database, request_id: str) -> set[str]:
    """The active accounts whose queue (``GET /api/consults``) lists the request."""
    async with db.unit_of_work() as session:
        accounts = (await session.exec(select(UserAccount).where(col(UserAccount.active)))).all()
    showing = set()
    for account in accounts:
        if account.role not in (Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR):
            continue
        queue = await client.get("/api/consults", headers=await login(client, account.username))
        assert queue.status_code == 200, queue.text
        if request_id in [r["id"] for r in queue.json()]:
            showing.add(account.username)
    return showing


async def _watching(db: Database, request_id: str) -> set[str]:
    async with db.read_only() as connection:
        told = await watchers(connection, uuid.UUID(request_id))
    async with db.unit_of_work() as session:
        names = await session.exec(
            select(UserAccount.username).where(col(UserAccount.id).in_(told))
        )
        return set(names.all())


async def test_the_pages_told_are_those_whose_queue_shows_the_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Targeted at a hospital, untargeted, then assigned: the accounts told of a change are
    exactly those whose queue lists the request."""
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    hospital = (await service_of(client, cardio))["organization_id"]
    patient = (await own_patients(client, doctor))[0]
    targeted = await new_request(client, doctor, patient, target_organization_id=hospital)
    untargeted = await new_request(client, doctor, patient)
    for request in (targeted, untargeted):
        showing = await _queues_showing(client, db, request["id"])
        assert {"bs.xa1", "bs.tim", "dieuphoi"} <= showing and "bs.da" not in showing
        assert await _watching(db, request["id"]) == showing
    accepted = await client.post(f"/api/consults/{targeted['id']}/accept", json={}, headers=cardio)
    assert accepted.status_code == 200, accepted.text
    assert await _watching(db, targeted["id"]) == await _queues_showing(client, db, targeted["id"])
