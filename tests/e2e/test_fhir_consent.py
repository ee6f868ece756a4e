"""The patient's consent as FHIR R4 Consent: one per purpose, inactive once withdrawn, read
and searched by patient by those who may read the patient, every access audited."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import col, select

from telehealth.auth.models import AuditEvent, AuditOutcome
from telehealth.db import Database
from tests.consult_support import consent_to, new_request, unconsenting_patient
from tests.e2e.fhir_support import (
    WRITER_ID,
    WRITER_SECRET,
    add_writer_client,
    assert_outcome,
    client_headers,
    entries,
    fhir_json,
)
from tests.helpers import login


def _codes(concept: dict[str, object]) -> set[str]:
    return {c["code"] for c in concept["coding"]}  # type: ignore[index,union-attr]


async def test_consents_are_fhir_consents_read_and_searched_by_patient(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = await unconsenting_patient(client, doctor)
    spoken, sharing = await consent_to(
        client,
        doctor,
        patient,
        "remote_consultation",
        "record_sharing",
        method="spoken_before_witness",
        witness_name="Điều dưỡng Lê Thị Hoa",
    )
    given = fhir_json(await client.get(f"/fhir/Consent/{spoken['id']}", headers=doctor))
    assert given["status"] == "active"
    assert given["patient"]["reference"] == f"Patient/{patient}"
    assert _codes(given["scope"]) == {"treatment"}
    assert _codes(given["category"][0]) == {"59284-0"}
    assert given["performer"] == [{"reference": f"Patient/{patient}"}]
    assert "Lê Thị Hoa" in given["sourceAttachment"]["title"]
    provision = given["provision"]
    assert provision["type"] == "permit" and "end" not in provision["period"]
    assert _codes(provision["code"][0]) == {"remote_consultation"}
    assert _codes(provision["action"][0]) == {"use"}

    withdrawn = await client.post(
        f"/api/patients/{patient}/consents/{sharing['id']}/withdraw", json={}, headers=doctor
    )
    assert withdrawn.status_code == 200, withdrawn.text
    ended = fhir_json(await client.get(f"/fhir/Consent/{sharing['id']}", headers=doctor))
    assert ended["status"] == "inactive" and ended["provision"]["period"]["end"]
    assert _codes(ended["scope"]) == {"patient-privacy"}

    found = fhir_json(
        await client.get("/fhir/Consent", params={"patient": f"Patient/{patient}"}, headers=doctor)
    )
    assert {c["id"] for c in entries(found)} == {spoken["id"], sharing["id"]}
    active = fhir_json(
        await client.get(
            "/fhir/Consent", params={"patient": patient, "status": "active"}, headers=doctor
        )
    )
    assert [c["id"] for c in entries(active)] == [spoken["id"]]

    async with db.unit_of_work() as session:
        actions = (
            await session.exec(
                select(AuditEvent.action).where(
                    AuditEvent.entity_type == "Consent",
                    AuditEvent.outcome == AuditOutcome.SUCCESS,
                    col(AuditEvent.patient_id) == uuid.UUID(patient),
                )
            )
        ).all()
    assert {"create", "withdraw", "read", "search"} <= set(actions)


async def test_only_those_who_may_read_the_patient_read_their_consents(
    client: httpx.AsyncClient, db: Database
) -> None:
    own = await login(client, "bs.xa1")
    other = await login(client, "bs.xa2")
    cardio = await login(client, "bs.tim")
    admin = await login(client, "quantri")
    patient = await unconsenting_patient(client, own)
    consent = (await consent_to(client, own, patient, "remote_consultation"))[0]
    url = f"/fhir/Consent/{consent['id']}"

    assert_outcome(await client.get(url, headers=other), 404)
    assert_outcome(await client.get(url, headers=cardio), 404)
    assert_outcome(await client.get(url, headers=admin), 403)
    nothing = fhir_json(
        await client.get("/fhir/Consent", params={"patient": patient}, headers=other)
    )
    assert entries(nothing) == []
    assert_outcome(await client.get("/fhir/Consent", headers=own), 400, "one patient")
    # The demo hospital system may read patients, not consents; one with the scope may.
    assert_outcome(await client.get(url, headers=await client_headers(client)), 403)
    await add_writer_client(db, "system/Consent.rs")
    system = await client_headers(client, WRITER_ID, WRITER_SECRET)
    fhir_json(await client.get(url, headers=system))

    # Once a request of the patient is queued for the cardiologists, bs.tim reads it.
    await new_request(client, own, patient)
    fhir_json(await client.get(url, headers=cardio))

    async with db.unit_of_work() as session:
        denied = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.entity_type == "Consent",
                    AuditEvent.outcome == AuditOutcome.DENIED,
                    col(AuditEvent.patient_id) == uuid.UUID(patient),
                )
            )
        ).all()
    assert len(denied) >= 2
