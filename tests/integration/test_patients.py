"""Patients through the HTTP API: registration, identifiers, search without diacritics, access."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import col, func, select

from telehealth.auth.models import AuditEvent, AuditOutcome
from telehealth.db import Database
from telehealth.directory.models import Patient
from tests.helpers import assert_problem, login

NEW_PATIENT = {
    "full_name": "Nguyễn Thị Ánh Tuyết",
    "gender": "female",
    "birth_date": "1985-03-14",
    "national_id": "082185001234",
    "insurance_number": "GD4820123456789",
    "phone": "0912 345 678",
}


async def test_register_and_find_without_diacritics(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    created = await client.post("/api/patients", json=NEW_PATIENT, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["phone"] == "+84912345678"
    assert body["national_id"] == "082185001234"

    found = await client.get(
        "/api/patients", params={"name": "nguyen thi anh tuyet"}, headers=headers
    )
    assert found.status_code == 200
    assert body["id"] in [p["id"] for p in found.json()["items"]]
    by_words = await client.get("/api/patients", params={"name": "TUYET nguyen"}, headers=headers)
    assert body["id"] in [p["id"] for p in by_words.json()["items"]]
    by_card = await client.get(
        "/api/patients", params={"identifier": "gd4820123456789"}, headers=headers
    )
    assert [p["id"] for p in by_card.json()["items"]] == [body["id"]]


async def test_other_facility_cannot_see_patient(client: httpx.AsyncClient, db: Database) -> None:
    own = await login(client, "bs.xa1")
    other = await login(client, "bs.xa2")
    created = (await client.post("/api/patients", json=NEW_PATIENT, headers=own)).json()

    refused = await client.get(f"/api/patients/{created['id']}", headers=other)
    assert_problem(refused, 404)
    listed = await client.get(
        "/api/patients", params={"name": "nguyen thi anh tuyet"}, headers=other
    )
    assert created["id"] not in [p["id"] for p in listed.json()["items"]]
    changed = await client.patch(
        f"/api/patients/{created['id']}", json={"phone": "0987654321"}, headers=other
    )
    assert_problem(changed, 404)

    async with db.unit_of_work() as session:
        denied = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.entity_id == created["id"], AuditEvent.outcome == AuditOutcome.DENIED
                )
            )
        ).all()
        patient = await session.get(Patient, uuid.UUID(created["id"]))
    assert {event.action for event in denied} == {"read", "update"}
    assert patient is not None and patient.phone == "+84912345678"


async def test_bad_identifiers_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, db: Database
) -> None:
    headers = await login(client, "bs.xa1")
    async with db.unit_of_work() as session:
        before = (await session.exec(select(func.count()).select_from(Patient))).one()
    cases = {
        "national_id": {"national_id": "12345"},
        "insurance_number": {"insurance_number": "GD9820123456789"},
        "phone": {"phone": "12"},
    }
    for field, change in cases.items():
        response = await client.post(
            "/api/patients", json={**NEW_PATIENT, **change}, headers=headers
        )
        assert_problem(response, 422, field=field)
    wrong_year = await client.post(
        "/api/patients", json={**NEW_PATIENT, "birth_date": "1990-01-01"}, headers=headers
    )
    body = assert_problem(wrong_year, 422, field="national_id")
    assert "1985" in str(body["detail"])
    async with db.unit_of_work() as session:
        after = (await session.exec(select(func.count()).select_from(Patient))).one()
        names = (
            await session.exec(
                select(Patient.full_name).where(col(Patient.full_name) == "Nguyễn Thị Ánh Tuyết")
            )
        ).all()
    assert after == before
    assert names == []
