"""Idempotency-Key on the creating requests (issue 13, hole 10), through the HTTP server on
both databases: a retry gets the first answer and writes nothing, another body under the same
key is 422, keys are per account and expire, and concurrent retries create exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import text
from sqlmodel import col, func, select

from telehealth.consults.models import Appointment, ConsultAttachment, ConsultRequest
from telehealth.db import Database
from telehealth.directory.models import Patient
from telehealth.settings import Settings
from telehealth.timers.service import schedule
from telehealth.timeutil import utcnow
from tests.consult_support import (
    accepted_request,
    consent_to,
    own_patients,
    publish_week,
    request_body,
    service_of,
    slots,
)
from tests.handler_support import fire
from tests.helpers import assert_problem, login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
NEW_PATIENT = {
    "full_name": "Trần Văn Lặp",
    "gender": "male",
    "birth_date": "1980-05-02",
    "phone": "0912 000 111",
}


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.unit_of_work() as session:
        return int(
            (await session.exec(select(func.count()).select_from(model).where(*where))).one()
        )


async def _keys(db: Database) -> int:
    async with db.unit_of_work() as session:
        return int((await session.exec(text("SELECT count(*) FROM idempotency_key"))).one()[0])  # type: ignore[call-overload]


async def _booking(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    """bs.xa1's headers and a booking body: an accepted request and a free slot."""
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    request = await accepted_request(
        client, doctor, cardio, (await own_patients(client, doctor))[0]
    )
    slot = (await slots(client, doctor, practitioner_role_id=role["id"]))[1]
    return doctor, {"request_id": request["id"], "slot_id": slot["id"]}


async def test_a_retried_booking_gets_the_first_answer_and_books_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor, body = await _booking(client)
    headers = _keyed(doctor, "booking-7f3a")
    first = await client.post("/api/appointments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/api/appointments", json=body, headers=headers)
    assert (again.status_code, again.content) == (201, first.content)
    request_id = uuid.UUID(body["request_id"])
    assert await _count(db, Appointment, col(Appointment.request_id) == request_id) == 1
    # Without a key a repeat is a new request, refused as such.
    assert_problem(await client.post("/api/appointments", json=body, headers=doctor), 409)


async def test_each_creating_request_replays_its_first_answer(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = await client.post(
        "/api/patients", json=NEW_PATIENT, headers=_keyed(doctor, "patient-1")
    )
    assert patient.status_code == 201, patient.text
    replayed = await client.post(
        "/api/patients", json=NEW_PATIENT, headers=_keyed(doctor, "patient-1")
    )
    assert (replayed.status_code, replayed.content) == (201, patient.content)
    assert await _count(db, Patient, col(Patient.full_name) == NEW_PATIENT["full_name"]) == 1

    await consent_to(client, doctor, patient.json()["id"], "remote_consultation")
    body = request_body(patient.json()["id"])
    consult = await client.post("/api/consults", json=body, headers=_keyed(doctor, "consult-1"))
    assert consult.status_code == 201, consult.text
    replayed = await client.post("/api/consults", json=body, headers=_keyed(doctor, "consult-1"))
    assert (replayed.status_code, replayed.content) == (201, consult.content)
    of_patient = col(ConsultRequest.patient_id) == uuid.UUID(patient.json()["id"])
    assert await _count(db, ConsultRequest, of_patient) == 1

    url = f"/api/consults/{consult.json()['id']}/attachments"
    uploads = [
        # A new multipart boundary each time, as a client rebuilding the request would send.
        await client.post(url, files={"data": ("ecg.png", PNG)}, headers=_keyed(doctor, "ecg"))
        for _ in range(2)
    ]
    assert uploads[0].status_code == 201, uploads[0].text
    assert (uploads[1].status_code, uploads[1].content) == (201, uploads[0].content)
    of_consult = col(ConsultAttachment.request_id) == uuid.UUID(consult.json()["id"])
    assert await _count(db, ConsultAttachment, of_consult) == 1
    assert await _keys(db) == 3


async def test_the_same_key_with_another_body_is_refused(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    patient = (await own_patients(client, doctor))[0]
    headers = _keyed(doctor, "consult-2")
    first = await client.post("/api/consults", json=request_body(patient), headers=headers)
    assert first.status_code == 201, first.text
    changed = request_body(patient, reason="Khó thở khi nằm, cần hội chẩn tim mạch")
    refused = assert_problem(await client.post("/api/consults", json=changed, headers=headers), 422)
    assert "Idempotency-Key" in str(refused["detail"])
    elsewhere = await client.post("/api/patients", json=NEW_PATIENT, headers=headers)
    assert_problem(elsewhere, 422)


async def test_keys_belong_to_their_account_and_expire(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    doctor, other = await login(client, "bs.xa1"), await login(client, "bs.xa2")
    mine = await client.post("/api/patients", json=NEW_PATIENT, headers=_keyed(doctor, "k-1"))
    theirs = await client.post("/api/patients", json=NEW_PATIENT, headers=_keyed(other, "k-1"))
    assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
    assert mine.json()["id"] != theirs.json()["id"]  # never another account's answer

    async with db.unit_of_work() as session:
        await session.exec(text("UPDATE idempotency_key SET expires_at = created_at"))  # type: ignore[call-overload]
    renamed = {**NEW_PATIENT, "full_name": "Trần Văn Mới"}
    reused = await client.post("/api/patients", json=renamed, headers=_keyed(doctor, "k-1"))
    assert reused.status_code == 201, reused.text
    assert reused.json()["id"] != mine.json()["id"]

    async with db.unit_of_work() as session:
        schedule(session, "daily.purge_idempotency_keys", uuid.uuid4(), utcnow())
    assert len(await fire(db, settings, ["daily.purge_idempotency_keys"], utcnow())) == 1
    assert await _keys(db) == 1  # bs.xa2's expired key went; bs.xa1's renewed one stays


async def test_a_failed_request_keeps_no_key_and_bad_keys_are_400(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor, body = await _booking(client)
    cardio = await login(client, "bs.tim")
    taken = await client.post("/api/appointments", json=body, headers=doctor)
    assert taken.status_code == 201, taken.text
    second = await accepted_request(client, doctor, cardio, (await own_patients(client, doctor))[1])
    refused = await client.post(
        "/api/appointments",
        json={**body, "request_id": second["id"]},
        headers=_keyed(doctor, "late"),
    )
    assert_problem(refused, 409)
    assert await _keys(db) == 0  # the refusal wrote nothing, its key neither
    for bad in ("x" * 256, "tab\there", ""):
        assert_problem(
            await client.post("/api/patients", json=NEW_PATIENT, headers=_keyed(doctor, bad)), 400
        )


async def test_twenty_concurrent_retries_with_one_key_book_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor, body = await _booking(client)
    headers = _keyed(doctor, str(uuid.uuid4()))
    start = asyncio.Event()

    async def book() -> httpx.Response:
        await start.wait()
        return await client.post("/api/appointments", json=body, headers=headers)

    tasks = [asyncio.create_task(book()) for _ in range(20)]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    assert Counter(r.status_code for r in responses) == {201: 20}, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    assert [r.headers.get("idempotent-replayed") for r in responses].count(None) == 1
    request_id = uuid.UUID(body["request_id"])
    assert await _count(db, Appointment, col(Appointment.request_id) == request_id) == 1
    assert await _keys(db) == 1


async def test_concurrent_registrations_with_one_key_create_one_patient(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    headers = _keyed(doctor, "register-once")
    start = asyncio.Event()

    async def register() -> httpx.Response:
        await start.wait()
        return await client.post("/api/patients", json=NEW_PATIENT, headers=headers)

    tasks = [asyncio.create_task(register()) for _ in range(20)]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.gather(*tasks)
    assert Counter(r.status_code for r in responses) == {201: 20}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _count(db, Patient, col(Patient.full_name) == NEW_PATIENT["full_name"]) == 1
