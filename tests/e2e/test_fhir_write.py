"""FHIR writes of Patient, write-through from /api, versions, conditional interactions, Bundles."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlmodel import func, select

from telehealth.db import Database
from telehealth.directory.models import Patient
from telehealth.fhir.models import FhirResourceVersion
from tests.e2e.fhir_support import (
    INSURANCE,
    NATIONAL_ID,
    WRITER_ID,
    WRITER_SECRET,
    add_writer_client,
    assert_outcome,
    client_headers,
    entries,
    fhir_json,
)
from tests.helpers import login

FHIR = {"Content-Type": "application/fhir+json"}


def new_patient(organization: str, national_id: str = "082185001234") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": NATIONAL_ID, "value": national_id},
            {"system": INSURANCE, "value": "GD4820123456789"},
        ],
        "name": [{"use": "official", "family": "Nguyễn", "given": ["Thị", "Ánh", "Tuyết"]}],
        "gender": "female",
        "birthDate": "1985-03-14",
        "telecom": [{"system": "phone", "value": "0912 345 678"}],
        "managingOrganization": {"reference": organization},
    }


async def _own_organization(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    [one] = entries(
        fhir_json(await client.get("/fhir/Patient", params={"_count": "1"}, headers=headers))
    )
    reference: str = one["managingOrganization"]["reference"]
    return reference


async def _count(db: Database, model: Any) -> int:
    async with db.unit_of_work() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_doctor_creates_reads_and_updates_a_patient(client: httpx.AsyncClient) -> None:
    xa1 = {**await login(client, "bs.xa1"), **FHIR}
    org = await _own_organization(client, xa1)
    created = await client.post("/fhir/Patient", json=new_patient(org), headers=xa1)
    patient = fhir_json(created, 201)
    assert created.headers["location"].endswith(f"/fhir/Patient/{patient['id']}/_history/1")
    assert created.headers["etag"] == 'W/"1"'
    assert patient["name"][0]["text"] == "Nguyễn Thị Ánh Tuyết"
    assert patient["telecom"][0]["value"] == "+84912345678"  # cleaned by the directory rules
    found = entries(
        fhir_json(await client.get("/fhir/Patient", params={"name": "tuyet nguyen"}, headers=xa1))
    )
    assert [p["id"] for p in found] == [patient["id"]]

    patient["telecom"] = [{"system": "phone", "value": "0987654321"}]
    updated = await client.put(
        f"/fhir/Patient/{patient['id']}", json=patient, headers={**xa1, "If-Match": 'W/"1"'}
    )
    assert fhir_json(updated)["meta"]["versionId"] == "2"
    stale = await client.put(
        f"/fhir/Patient/{patient['id']}", json=patient, headers={**xa1, "If-Match": 'W/"1"'}
    )
    assert_outcome(stale, 412, "version 2")
    patched = await client.patch(
        f"/fhir/Patient/{patient['id']}",
        json={"birthDate": "1985-03-15", "telecom": None},
        headers={**xa1, "Content-Type": "application/merge-patch+json"},
    )
    body = fhir_json(patched)
    assert (
        body["birthDate"] == "1985-03-15"
        and "telecom" not in body
        and body["meta"]["versionId"] == "3"
    )
    history = fhir_json(await client.get(f"/fhir/Patient/{patient['id']}/_history", headers=xa1))
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["3", "2", "1"]
    admin = await login(client, "quantri")
    audit = fhir_json(
        await client.get("/fhir/AuditEvent", params={"patient": patient["id"]}, headers=admin)
    )
    actions = {e["resource"]["subtype"][0]["code"] for e in audit["entry"]}
    assert {"create", "update", "read"} <= actions
    first = fhir_json(await client.get(f"/fhir/Patient/{patient['id']}/_history/1", headers=xa1))
    assert first["telecom"][0]["value"] == "+84912345678"


async def test_api_changes_write_through_to_fhir(client: httpx.AsyncClient) -> None:
    xa1 = await login(client, "bs.xa1")
    [listed] = (await client.get("/api/patients", params={"limit": 1}, headers=xa1)).json()["items"]
    before = fhir_json(await client.get(f"/fhir/Patient/{listed['id']}", headers=xa1))
    changed = await client.patch(
        f"/api/patients/{listed['id']}", json={"full_name": "Lê Văn Tám"}, headers=xa1
    )
    assert changed.status_code == 200, changed.text
    after = fhir_json(await client.get(f"/fhir/Patient/{listed['id']}", headers=xa1))
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert after["name"][0]["text"] == "Lê Văn Tám"
    assert [
        p["id"]
        for p in entries(
            fhir_json(await client.get("/fhir/Patient", params={"name": "le van tam"}, headers=xa1))
        )
    ] == [listed["id"]]
    old = await client.get(
        f"/fhir/Patient/{listed['id']}/_history/{before['meta']['versionId']}", headers=xa1
    )
    assert fhir_json(old)["name"] == before["name"]
    admin = await login(client, "quantri")
    org = (
        await client.get("/api/organizations", params={"moh_code": "82101"}, headers=admin)
    ).json()["items"][0]
    await client.patch(
        f"/api/organizations/{org['id']}",
        json={"name": "Trạm Y tế phường Mỹ Phong mới"},
        headers=admin,
    )
    fhir_org = fhir_json(await client.get(f"/fhir/Organization/{org['id']}", headers=admin))
    assert (
        fhir_org["name"] == "Trạm Y tế phường Mỹ Phong mới" and fhir_org["meta"]["versionId"] == "2"
    )


async def test_bad_patients_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, db: Database
) -> None:
    xa1 = {**await login(client, "bs.xa1"), **FHIR}
    org = await _own_organization(client, xa1)
    patients, versions = await _count(db, Patient), await _count(db, FhirResourceVersion)
    wrong_cccd = new_patient(org, national_id="082199001234")  # encodes 1999, born 1985
    assert_outcome(
        await client.post("/fhir/Patient", json=wrong_cccd, headers=xa1), 422, "birth year"
    )
    unknown_system = new_patient(org)
    unknown_system["identifier"][0]["system"] = "urn:oid:1.2.3"
    assert_outcome(
        await client.post("/fhir/Patient", json=unknown_system, headers=xa1), 422, "national_id"
    )
    not_fhir = {**new_patient(org), "gender": 7, "birthDate": "14/03/1985"}
    assert_outcome(await client.post("/fhir/Patient", json=not_fhir, headers=xa1), 422)
    assert_outcome(
        await client.post("/fhir/Patient", content=b"{oops", headers=xa1), 400, "not JSON"
    )
    assert_outcome(
        await client.post(
            "/fhir/Patient", json=new_patient(org), headers={**xa1, "Content-Type": "text/plain"}
        ),
        415,
    )
    assert_outcome(
        await client.post("/fhir/Organization", json={"resourceType": "Organization"}, headers=xa1),
        400,
        "read-only",
    )
    assert (await _count(db, Patient), await _count(db, FhirResourceVersion)) == (
        patients,
        versions,
    )


async def test_who_may_write_patients(client: httpx.AsyncClient, db: Database) -> None:
    xa1 = {**await login(client, "bs.xa1"), **FHIR}
    xa2 = {**await login(client, "bs.xa2"), **FHIR}
    org = await _own_organization(client, xa1)
    assert_outcome(
        await client.post("/fhir/Patient", json=new_patient(org), headers=xa2), 403, "own facility"
    )
    reader = {**await client_headers(client), **FHIR}
    assert_outcome(
        await client.post("/fhir/Patient", json=new_patient(org), headers=reader),
        403,
        "system/Patient",
    )
    await add_writer_client(db)
    writer = {**await client_headers(client, WRITER_ID, WRITER_SECRET), **FHIR}
    created = fhir_json(
        await client.post("/fhir/Patient", json=new_patient(org), headers=writer), 201
    )
    assert_outcome(
        await client.put(f"/fhir/Patient/{created['id']}", json=created, headers=xa2), 404
    )


async def test_conditional_create_and_update(client: httpx.AsyncClient, db: Database) -> None:
    xa1 = {**await login(client, "bs.xa1"), **FHIR}
    org = await _own_organization(client, xa1)
    criteria = f"identifier={NATIONAL_ID}|082185001234"
    first = await client.post(
        "/fhir/Patient", json=new_patient(org), headers={**xa1, "If-None-Exist": criteria}
    )
    created = fhir_json(first, 201)
    again = await client.post(
        "/fhir/Patient", json=new_patient(org), headers={**xa1, "If-None-Exist": criteria}
    )
    assert fhir_json(again, 200)["id"] == created["id"]
    by_query = await client.post(f"/fhir/Patient?{criteria}", json=new_patient(org), headers=xa1)
    assert fhir_json(by_query, 200)["id"] == created["id"]
    assert_outcome(
        await client.post("/fhir/Patient?gender=female", json=new_patient(org), headers=xa1), 412
    )
    changed = {**new_patient(org), "birthDate": "1985-03-14", "gender": "female"}
    changed["telecom"] = [{"system": "phone", "value": "0987654321"}]
    updated = await client.put(f"/fhir/Patient?{criteria}", json=changed, headers=xa1)
    body = fhir_json(updated, 200)
    assert body["id"] == created["id"] and body["meta"]["versionId"] == "2"
    made = await client.put(
        f"/fhir/Patient?identifier={NATIONAL_ID}|082185009999",
        json=new_patient(org, "082185009999")
        | {"identifier": [{"system": NATIONAL_ID, "value": "082185009999"}]},
        headers=xa1,
    )
    assert fhir_json(made, 201)["id"] != created["id"]


async def test_concurrent_updates_with_the_same_if_match_have_one_winner(
    client: httpx.AsyncClient,
) -> None:
    xa1 = {**await login(client, "bs.xa1"), **FHIR}
    [patient] = entries(
        fhir_json(await client.get("/fhir/Patient", params={"_count": "1"}, headers=xa1))
    )
    version = patient["meta"]["versionId"]

    async def attempt(index: int) -> int:
        body = {**patient, "telecom": [{"system": "phone", "value": f"09123456{index:02d}"}]}
        response = await client.put(
            f"/fhir/Patient/{patient['id']}",
            json=body,
            headers={**xa1, "If-Match": f'W/"{version}"'},
        )
        assert response.status_code in (200, 409, 412), response.text
        return response.status_code

    statuses = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert statuses.count(200) == 1
    history = fhir_json(await client.get(f"/fhir/Patient/{patient['id']}/_history", headers=xa1))
    assert len(history["entry"]) == int(version) + 1


async def test_transaction_is_all_or_nothing(client: httpx.AsyncClient, db: Database) -> None:
    xa1 = {**await login(client, "bs.xa1"), **FHIR}
    org = await _own_organization(client, xa1)
    good = new_patient(org, "082185001234")
    other = new_patient(org, "082185005678") | {
        "identifier": [{"system": NATIONAL_ID, "value": "082185005678"}]
    }
    bad = new_patient(org, "999185001234") | {
        "identifier": [{"system": NATIONAL_ID, "value": "999185001234"}]
    }
    patients = await _count(db, Patient)

    def transaction(*resources: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"urn:uuid:0000000{i}-0000-4000-8000-000000000000",
                    "resource": r,
                    "request": {"method": "POST", "url": "Patient"},
                }
                for i, r in enumerate(resources)
            ],
        }

    failed = await client.post("/fhir", json=transaction(good, bad), headers=xa1)
    assert_outcome(failed, 422, "entry[1]")
    assert await _count(db, Patient) == patients
    done = fhir_json(await client.post("/fhir", json=transaction(good, other), headers=xa1))
    assert done["type"] == "transaction-response"
    assert [e["response"]["status"] for e in done["entry"]] == ["201 Created", "201 Created"]
    assert await _count(db, Patient) == patients + 2
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": bad, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{done['entry'][0]['resource']['id']}"}},
        ],
    }
    answered = fhir_json(await client.post("/fhir", json=batch, headers=xa1))
    assert answered["entry"][0]["response"]["status"] == "422"
    assert answered["entry"][1]["response"]["status"] == "200 OK"
