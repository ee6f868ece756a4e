"""Appointment/$find and Appointment/$book: the same slots and the same atomic booking as /api,
including a race of many $book calls for one slot (one winner, the others 409)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlmodel import select

from telehealth.consults.models import Appointment
from telehealth.db import Database
from tests.consult_support import accepted_request, own_patients, publish_week, service_of
from tests.e2e.fhir_support import (
    FHIR_JSON,
    WRITER_ID,
    WRITER_SECRET,
    add_writer_client,
    client_headers,
    fhir_json,
)
from tests.helpers import login

RACERS = 30
BOOKER_SCOPES = "system/Appointment.crs system/Slot.rs system/ServiceRequest.rs"


async def accepted(client: httpx.AsyncClient, count: int) -> list[str]:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patients = await own_patients(client, doctor)
    ids = [
        (await accepted_request(client, doctor, cardio, patients[i % len(patients)]))["id"]
        for i in range(count)
    ]
    return ids


def proposals(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


async def test_find_proposes_what_api_offers_and_book_books_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    request_id, other_id = await accepted(client, 2)
    doctor = await login(client, "bs.xa1")
    offered = (await client.get(f"/api/consults/{request_id}/slots", headers=doctor)).json()
    found = fhir_json(
        await client.get(
            "/fhir/Appointment/$find",
            params={"service-request": f"ServiceRequest/{request_id}", "_count": "5"},
            headers=doctor,
        )
    )
    proposed = proposals(found)
    assert [p["slot"][0]["reference"] for p in proposed] == [f"Slot/{s['id']}" for s in offered[:5]]
    assert {p["status"] for p in proposed} == {"proposed"}

    by_post = fhir_json(
        await client.post(
            "/fhir/Appointment/$find",
            json={
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "specialty", "valueString": "394579002"},
                    {"name": "_count", "valueInteger": 3},
                ],
            },
            headers={**doctor, "Content-Type": FHIR_JSON},
        )
    )
    assert len(proposals(by_post)) == 3

    booked = await client.post(
        "/fhir/Appointment/$book",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "appointment", "resource": proposed[0]}],
        },
        headers={**doctor, "Content-Type": FHIR_JSON},
    )
    appointment = fhir_json(booked, 201)
    assert appointment["status"] == "booked" and appointment["meta"]["versionId"] == "1"
    assert booked.headers["Location"].endswith(f"/Appointment/{appointment['id']}/_history/1")
    api_view = await client.get(f"/api/appointments/{appointment['id']}", headers=doctor)
    assert api_view.json()["slot_id"] == offered[0]["id"]

    taken = {**proposed[0], "basedOn": [{"reference": f"ServiceRequest/{other_id}"}]}
    again = await client.post(
        "/fhir/Appointment", json=taken, headers={**doctor, "Content-Type": FHIR_JSON}
    )
    outcome = fhir_json(again, 409)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "slot no longer available" in outcome["issue"][0]["diagnostics"]

    no_request = {k: v for k, v in proposed[1].items() if k != "basedOn"}
    refused = await client.post(
        "/fhir/Appointment/$book", json=no_request, headers={**doctor, "Content-Type": FHIR_JSON}
    )
    assert refused.status_code == 422 and "basedOn" in refused.text

    stranger = await login(client, "bs.xa2")  # another commune: the request does not exist
    hidden = await client.post(
        "/fhir/Appointment/$book",
        json={**proposed[1], "basedOn": [{"reference": f"ServiceRequest/{other_id}"}]},
        headers={**stranger, "Content-Type": FHIR_JSON},
    )
    assert hidden.status_code == 404
    reader = await client_headers(client)  # directory scopes only
    forbidden = await client.post(
        "/fhir/Appointment/$book",
        json={**proposed[1], "basedOn": [{"reference": f"ServiceRequest/{other_id}"}]},
        headers={**reader, "Content-Type": FHIR_JSON},
    )
    assert forbidden.status_code == 403

    metadata = fhir_json(await client.get("/fhir/metadata"))
    resource = next(r for r in metadata["rest"][0]["resource"] if r["type"] == "Appointment")
    operations = {o["name"]: o["definition"] for o in resource["operation"]}
    assert set(operations) == {"find", "book"}
    definition = fhir_json(
        await client.get("/fhir/OperationDefinition/Appointment-book", headers=doctor)
    )
    assert definition["url"] == operations["book"]


async def test_many_concurrent_book_calls_for_one_slot_have_one_winner(
    client: httpx.AsyncClient, db: Database
) -> None:
    requests = await accepted(client, RACERS)
    await add_writer_client(db, scopes=BOOKER_SCOPES)
    his = {
        **(await client_headers(client, WRITER_ID, WRITER_SECRET)),
        "Content-Type": FHIR_JSON,
    }
    found = fhir_json(
        await client.get(
            "/fhir/Appointment/$find",
            params={"specialty": "http://snomed.info/sct|394579002", "_count": "4"},
            headers=his,
        )
    )
    target = proposals(found)[3]
    start = asyncio.Event()

    async def book(request_id: str) -> httpx.Response:
        await start.wait()
        body = {**target, "basedOn": [{"reference": f"ServiceRequest/{request_id}"}]}
        return await client.post("/fhir/Appointment/$book", json=body, headers=his)

    tasks = [asyncio.create_task(book(r)) for r in requests]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)

    assert Counter(r.status_code for r in responses) == {201: 1, 409: RACERS - 1}, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    for loser in (r for r in responses if r.status_code == 409):
        assert fhir_json(loser, 409)["resourceType"] == "OperationOutcome"
    winner = fhir_json(next(r for r in responses if r.status_code == 201), 201)
    async with db.unit_of_work() as session:
        appointments = (await session.exec(select(Appointment))).all()
    assert [str(a.id) for a in appointments] == [winner["id"]]
    stored = fhir_json(
        await client.get(
            "/fhir/Appointment", params={"slot": target["slot"][0]["reference"]}, headers=his
        )
    )
    assert [e["resource"]["id"] for e in stored["entry"]] == [winner["id"]]
