"""Who may read the FHIR view of consults (people by role and facility, clients by scopes),
searches of it in UTC, and R4B validity of every version a consult writes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import select

from telehealth.db import Database
from telehealth.fhir.models import FhirResourceVersion
from tests.consult_support import accepted_request, own_patients, publish_week, service_of
from tests.e2e.fhir_support import (
    WRITER_ID,
    WRITER_SECRET,
    add_writer_client,
    client_headers,
    fhir_json,
)
from tests.helpers import login

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


async def booked_consult(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patient = (await own_patients(client, doctor))[0]
    request = await accepted_request(client, doctor, cardio, patient)
    offered = (await client.get(f"/api/consults/{request['id']}/slots", headers=doctor)).json()
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": offered[0]["id"]},
        headers=doctor,
    )
    assert booked.status_code == 201, booked.text
    return request, booked.json()


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


async def test_people_see_the_consults_they_work_on_and_nothing_else(
    client: httpx.AsyncClient, db: Database
) -> None:
    request, appointment = await booked_consult(client)
    patient = request["patient_id"]
    reads = {
        "ServiceRequest": request["id"],
        "Task": request["id"],
        "Observation": request["id"],
        "Appointment": appointment["id"],
    }
    for username in ("bs.xa1", "bs.tim", "dieuphoi"):
        headers = await login(client, username)
        for resource_type, resource_id in reads.items():
            fhir_json(await client.get(f"/fhir/{resource_type}/{resource_id}", headers=headers))
        found = fhir_json(
            await client.get("/fhir/Appointment", params={"patient": patient}, headers=headers)
        )
        assert ids(found) == [appointment["id"]], username

    for username in ("bs.xa2", "bs.nhi"):  # another commune; another specialty
        headers = await login(client, username)
        for resource_type, resource_id in reads.items():
            hidden = await client.get(f"/fhir/{resource_type}/{resource_id}", headers=headers)
            assert hidden.status_code == 404, (username, resource_type, hidden.text)
        for resource_type in ("Appointment", "ServiceRequest", "Task"):
            found = fhir_json(
                await client.get(
                    f"/fhir/{resource_type}", params={"patient": patient}, headers=headers
                )
            )
            assert ids(found) == [], (username, resource_type)

    admin = await login(client, "quantri")
    refused = await client.get(f"/fhir/ServiceRequest/{request['id']}", headers=admin)
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"

    directory_only = await client_headers(client)  # the demo HIS: directory and patients only
    refused = await client.get(
        "/fhir/Appointment", params={"patient": patient}, headers=directory_only
    )
    assert refused.status_code == 403 and "system/Appointment" in refused.text
    await add_writer_client(db, scopes="system/Appointment.rs")
    scoped = await client_headers(client, WRITER_ID, WRITER_SECRET)
    found = fhir_json(
        await client.get("/fhir/Appointment", params={"patient": patient}, headers=scoped)
    )
    assert ids(found) == [appointment["id"]]
    refused = await client.get(f"/fhir/Task/{request['id']}", headers=scoped)
    assert refused.status_code == 403

    async with db.unit_of_work() as session:
        versions = (await session.exec(select(FhirResourceVersion))).all()
    types = {v.resource_type for v in versions}
    assert {"Schedule", "Slot", "Appointment", "ServiceRequest", "Task", "Observation"} <= types
    for version in versions:
        get_fhir_model_class(version.resource_type).model_validate(json.loads(version.text))


async def test_date_searches_take_any_offset_and_compare_in_utc(
    client: httpx.AsyncClient, db: Database
) -> None:
    request, appointment = await booked_consult(client)
    await add_writer_client(db)
    hit = await client_headers(client, WRITER_ID, WRITER_SECRET)
    start = datetime.fromisoformat(appointment["starts_at"])
    local = start.astimezone(LOCAL).isoformat(timespec="minutes")  # e.g. ...T08:00+07:00
    assert local.endswith("+07:00")

    async def matching(resource_type: str, **params: str) -> list[str]:
        params["patient"] = request["patient_id"]
        response = await client.get(f"/fhir/{resource_type}", params=params, headers=hit)
        return ids(fhir_json(response))

    assert await matching("Appointment", date=local) == [appointment["id"]]
    assert await matching("Appointment", date=f"ge{local}") == [appointment["id"]]
    assert await matching("Appointment", date=f"lt{local}") == []
    assert await matching("Appointment", date=f"le{local}", status="booked") == [appointment["id"]]
    assert await matching("Appointment", status="cancelled") == []
    slot = await client.get(
        "/fhir/Slot",
        params={"start": local, "schedule": f"Schedule/{appointment['practitioner_role_id']}"},
        headers=hit,
    )
    assert [e["resource"]["status"] for e in fhir_json(slot)["entry"]] == ["busy"]
    bad = await client.get("/fhir/Appointment", params={"date": "tomorrow"}, headers=hit)
    assert bad.status_code == 400 and "tomorrow" in bad.text


def consult_request(patient: str, **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "11429006"}]}],
        "code": {
            "coding": [
                {
                    "system": "http://telehealth.vn/fhir/CodeSystem/consult-activity-type",
                    "code": "imaging",
                }
            ]
        },
        "priority": "urgent",
        "subject": {"reference": f"Patient/{patient}"},
        "performerType": {"coding": [{"system": "http://snomed.info/sct", "code": "394579002"}]},
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I21.0"}]}],
        "note": [{"text": "Đau ngực cấp"}, {"text": "ECG ST chênh lên V1-V4"}],
    }
    resource.update(changes)
    return resource


async def test_a_service_request_posted_over_fhir_is_a_consult_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = (await own_patients(client, doctor))[0]
    headers = {**doctor, "Content-Type": "application/fhir+json"}
    created = fhir_json(
        await client.post("/fhir/ServiceRequest", json=consult_request(patient), headers=headers),
        201,
    )
    assert created["status"] == "active" and created["priority"] == "urgent"
    in_api = (await client.get(f"/api/consults/{created['id']}", headers=doctor)).json()
    assert in_api["status"] == "requested" and in_api["activity_type"] == "imaging"
    assert [d["code"] for d in in_api["diagnoses"]] == ["I21.0"]
    assert in_api["clinical_summary"] == "ECG ST chênh lên V1-V4"

    cardio = await login(client, "bs.tim")  # only requesting doctors create requests
    refused = await client.post(
        "/fhir/ServiceRequest",
        json=consult_request(patient),
        headers={**cardio, "Content-Type": "application/fhir+json"},
    )
    assert refused.status_code == 403
    for bad in (
        consult_request(
            patient,
            reasonCode=[
                {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "X99.99"}]}
            ],
        ),
        consult_request(patient, priority="bogus"),
        consult_request(patient, code={"text": "no activity"}),
    ):
        response = await client.post("/fhir/ServiceRequest", json=bad, headers=headers)
        assert response.status_code == 422, response.text
        assert fhir_json(response, 422)["resourceType"] == "OperationOutcome"
    queue = (await client.get("/api/consults", headers=doctor)).json()
    assert [r["id"] for r in queue] == [created["id"]]
