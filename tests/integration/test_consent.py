"""The patient's consent through the HTTP API: recorded per purpose with its evidence, read
and withdrawn by those who may, audited; and what it gates (sending, booking)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlmodel import col, select

from telehealth.auth.models import AuditEvent, AuditOutcome
from telehealth.consults.models import ConsultRequest
from telehealth.db import Database
from tests.consult_support import (
    accepted_request,
    consent_to,
    new_request,
    publish_week,
    request_body,
    service_of,
    slots,
    unconsenting_patient,
    well_ahead,
)
from tests.helpers import assert_problem, login


def consents_url(patient: str) -> str:
    return f"/api/patients/{patient}/consents"


async def test_consent_is_recorded_per_purpose_with_its_evidence(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = await unconsenting_patient(client, doctor)
    url = consents_url(patient)
    for body, field in (
        ({"purposes": [], "method": "electronic"}, "purposes"),
        ({"method": "electronic"}, "purposes"),
        ({"purposes": ["remote_consultation"], "method": "spoken_before_witness"}, "witness"),
        ({"purposes": ["remote_consultation"], "method": "signed_paper"}, "scan_attachment_id"),
        ({"purposes": ["marketing"], "method": "electronic"}, "purposes"),
    ):
        refused = await client.post(url, json=body, headers=doctor)
        assert_problem(refused, refused.status_code, field=field)
        assert refused.status_code in (400, 422)
    assert (await client.get(url, headers=doctor)).json() == []

    recorded = await client.post(
        url,
        json={
            "purposes": ["remote_consultation", "record_sharing"],
            "method": "spoken_before_witness",
            "witness_name": "Điều dưỡng Lê Thị Hoa",
        },
        headers=doctor,
    )
    assert recorded.status_code == 201, recorded.text
    assert {c["purpose"] for c in recorded.json()} == {"remote_consultation", "record_sharing"}
    me = (await client.get("/api/auth/me", headers=doctor)).json()
    assert all(c["recorded_by"] == me["id"] and c["active"] for c in recorded.json())
    # Nothing was assumed: recording was not among the purposes named.
    listed = (await client.get(url, headers=doctor)).json()
    assert "session_recording" not in {c["purpose"] for c in listed}

    again = await client.post(
        url, json={"purposes": ["record_sharing"], "method": "electronic"}, headers=doctor
    )
    assert_problem(again, 409)


async def test_signed_paper_names_a_scan_of_the_patients_own_request(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = await unconsenting_patient(client, doctor)
    draft = await new_request(client, doctor, patient, submit=False)
    scan = await client.post(
        f"/api/consults/{draft['id']}/attachments",
        files={"data": ("giay-dong-y.pdf", b"%PDF-1.4\n% consent form\n", "application/pdf")},
        headers=doctor,
    )
    assert scan.status_code == 201, scan.text
    wrong = await client.post(
        consents_url(patient),
        json={
            "purposes": ["remote_consultation"],
            "method": "signed_paper",
            "scan_attachment_id": str(uuid.uuid4()),
        },
        headers=doctor,
    )
    assert_problem(wrong, 422, field="scan_attachment_id")
    recorded = await client.post(
        consents_url(patient),
        json={
            "purposes": ["remote_consultation"],
            "method": "signed_paper",
            "scan_attachment_id": scan.json()["id"],
            "request_id": draft["id"],
        },
        headers=doctor,
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()[0]["scan_attachment_id"] == scan.json()["id"]


async def test_only_doctors_who_see_the_patient_read_or_record_and_all_is_audited(
    client: httpx.AsyncClient, db: Database
) -> None:
    own = await login(client, "bs.xa1")
    other = await login(client, "bs.xa2")
    cardio = await login(client, "bs.tim")
    dermatology = await login(client, "bs.da")
    patient = await unconsenting_patient(client, own)
    url = consents_url(patient)
    electronic = {"purposes": ["remote_consultation"], "method": "electronic"}

    assert_problem(await client.get(url, headers=other), 404)
    assert_problem(await client.post(url, json=electronic, headers=other), 404)
    assert_problem(await client.get(url, headers=cardio), 404)
    consent = (await consent_to(client, own, patient, "remote_consultation"))[0]
    assert_problem(
        await client.post(f"{url}/{consent['id']}/withdraw", json={}, headers=other), 404
    )

    # The cardiologist the request is queued for reads the consents through it, never writes.
    await new_request(client, own, patient)
    assert [c["id"] for c in (await client.get(url, headers=cardio)).json()] == [consent["id"]]
    assert_problem(await client.get(url, headers=dermatology), 404)
    assert_problem(
        await client.post(
            url, json={"purposes": ["record_sharing"], "method": "electronic"}, headers=cardio
        ),
        403,
    )
    assert_problem(
        await client.post(f"{url}/{consent['id']}/withdraw", json={}, headers=cardio), 403
    )

    async with db.unit_of_work() as session:
        events = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.entity_type == "Consent",
                    col(AuditEvent.patient_id) == uuid.UUID(patient),
                )
            )
        ).all()
    outcomes = {(e.action, e.outcome) for e in events}
    assert ("read", AuditOutcome.DENIED) in outcomes
    assert ("create", AuditOutcome.DENIED) in outcomes
    assert ("withdraw", AuditOutcome.DENIED) in outcomes
    assert ("create", AuditOutcome.SUCCESS) in outcomes
    assert ("read", AuditOutcome.SUCCESS) in outcomes


async def test_withdrawal_keeps_the_consent_as_history(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    patient = await unconsenting_patient(client, doctor)
    consent = (await consent_to(client, doctor, patient, "remote_consultation"))[0]
    withdraw = f"{consents_url(patient)}/{consent['id']}/withdraw"

    withdrawn = await client.post(withdraw, json={"reason": "Người bệnh đổi ý"}, headers=doctor)
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert not body["active"] and body["withdrawal_reason"] == "Người bệnh đổi ý"
    assert body["withdrawn_by"] == consent["recorded_by"] and body["withdrawn_at"]
    assert_problem(await client.post(withdraw, json={}, headers=doctor), 409)

    # Given again later: a new consent beside the withdrawn one.
    anew = (await consent_to(client, doctor, patient, "remote_consultation"))[0]
    listed = (await client.get(consents_url(patient), headers=doctor)).json()
    assert {(c["id"], c["active"]) for c in listed} == {(anew["id"], True), (consent["id"], False)}


async def test_a_request_is_not_sent_without_consent_to_remote_consultation(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = await unconsenting_patient(client, doctor)

    refused = await client.post("/api/consults", json=request_body(patient), headers=doctor)
    problem = assert_problem(refused, 409)
    assert "consent to remote consultation" in str(problem["detail"])
    async with db.unit_of_work() as session:
        written = await session.exec(
            select(ConsultRequest).where(ConsultRequest.patient_id == uuid.UUID(patient))
        )
        assert written.all() == []

    draft = await client.post(
        "/api/consults", json=request_body(patient, submit=False), headers=doctor
    )
    assert draft.status_code == 201, draft.text
    submit = f"/api/consults/{draft.json()['id']}/submit"
    assert_problem(await client.post(submit, json={}, headers=doctor), 409)

    await consent_to(client, doctor, patient, "remote_consultation")
    sent = await client.post(submit, json={}, headers=doctor)
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "requested"


async def test_withdrawal_stops_sending_and_booking(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patient = await unconsenting_patient(client, doctor)
    consent = (await consent_to(client, doctor, patient, "remote_consultation"))[0]
    accepted = await accepted_request(client, doctor, cardio, patient)
    draft = await new_request(client, doctor, patient, submit=False)

    withdrawn = await client.post(
        f"{consents_url(patient)}/{consent['id']}/withdraw", json={}, headers=doctor
    )
    assert withdrawn.status_code == 200, withdrawn.text
    slot = well_ahead(await slots(client, doctor, practitioner_role_id=role["id"]))
    booking = {"request_id": accepted["id"], "slot_id": slot["id"]}
    for headers in (doctor, cardio):
        refused = await client.post("/api/appointments", json=booking, headers=headers)
        assert "consent to remote consultation" in str(assert_problem(refused, 409)["detail"])
    assert_problem(
        await client.post(f"/api/consults/{draft['id']}/submit", json={}, headers=doctor), 409
    )

    await consent_to(client, doctor, patient, "remote_consultation")
    booked = await client.post("/api/appointments", json=booking, headers=doctor)
    assert booked.status_code == 201, booked.text


async def test_two_doctors_recording_at_once_leave_one_consent_in_force(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = await unconsenting_patient(client, doctor)
    body = {"purposes": ["remote_consultation"], "method": "electronic"}
    answers = await asyncio.gather(
        *(client.post(consents_url(patient), json=body, headers=doctor) for _ in range(12))
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 11
    listed = (await client.get(consents_url(patient), headers=doctor)).json()
    assert len(listed) == 1
