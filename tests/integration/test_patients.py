"""Patients through the HTTP API: registration, identifiers, search without diacritics, access."""

from __future__ import annotations

import asyncio
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


async def test_update_normalises_and_clears_optional_fields(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    patient = (await client.post("/api/patients", json=NEW_PATIENT, headers=headers)).json()
    url = f"/api/patients/{patient['id']}"
    changed = await client.patch(
        url, json={"phone": "0987 654 321", "full_name": "Nguyễn  Thị Ánh  Tuyết"}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["phone"] == "+84987654321"
    assert changed.json()["full_name"] == "Nguyễn Thị Ánh Tuyết"
    cleared = await client.patch(
        url, json={"national_id": "", "insurance_number": None, "phone": ""}, headers=headers
    )
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert (body["national_id"], body["insurance_number"], body["phone"]) == (None, None, None)
    # A blank identifier is no identifier: a second blank one is no duplicate.
    other = {**NEW_PATIENT, "national_id": None, "insurance_number": None, "full_name": "Lê Văn B"}
    second = (await client.post("/api/patients", json=other, headers=headers)).json()
    blank = await client.patch(
        f"/api/patients/{second['id']}", json={"national_id": ""}, headers=headers
    )
    assert blank.status_code == 200, blank.text
    for field in ("full_name", "gender", "birth_date"):
        assert_problem(
            await client.patch(url, json={field: None}, headers=headers), 400, field=field
        )


async def test_changing_birth_date_or_gender_rechecks_the_cccd(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    patient = (await client.post("/api/patients", json=NEW_PATIENT, headers=headers)).json()
    url = f"/api/patients/{patient['id']}"
    assert_problem(
        await client.patch(url, json={"birth_date": "1986-03-14"}, headers=headers),
        422,
        field="national_id",
    )
    assert_problem(
        await client.patch(url, json={"gender": "male"}, headers=headers), 422, field="national_id"
    )
    assert (
        await client.patch(url, json={"birth_date": "1985-12-01"}, headers=headers)
    ).status_code == 200


async def test_duplicate_identifiers_are_409_even_when_racing(
    client: httpx.AsyncClient, db: Database
) -> None:
    headers = await login(client, "bs.xa1")
    first = await client.post("/api/patients", json=NEW_PATIENT, headers=headers)
    assert first.status_code == 201
    again = await client.post(
        "/api/patients", json={**NEW_PATIENT, "insurance_number": None}, headers=headers
    )
    assert_problem(again, 409)
    racing = await asyncio.gather(
        *(
            client.post(
                "/api/patients",
                json={
                    **NEW_PATIENT,
                    "national_id": "082190004321",
                    "birth_date": "1990-02-02",
                    "insurance_number": None,
                },
                headers=headers,
            )
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in racing) == [201] + [409] * 5, [r.text for r in racing]
    async with db.unit_of_work() as session:
        count = (
            await session.exec(
                select(func.count())
                .select_from(Patient)
                .where(Patient.national_id == "082190004321")
            )
        ).one()
    assert count == 1


async def test_who_may_register_where(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    elsewhere = (
        await client.get("/api/organizations", params={"moh_code": "82102"}, headers=doctor)
    ).json()["items"][0]["id"]
    refused = await client.post(
        "/api/patients", json={**NEW_PATIENT, "organization_id": elsewhere}, headers=doctor
    )
    assert_problem(refused, 403)
    for username in ("bs.tim", "dieuphoi", "quantri"):
        headers = await login(client, username)
        assert_problem(await client.post("/api/patients", json=NEW_PATIENT, headers=headers), 403)
        listed = await client.get("/api/patients", headers=headers)
        assert listed.status_code == 200 and listed.json()["items"] == []


async def test_district_doctor_sees_own_facility_only(client: httpx.AsyncClient) -> None:
    district = await login(client, "bs.huyen1")
    me = (await client.get("/api/auth/me", headers=district)).json()
    found = (await client.get("/api/patients", params={"limit": 200}, headers=district)).json()
    assert found["total"] == 4
    assert {p["organization_id"] for p in found["items"]} == {me["organization_id"]}
