"""Consult requests through the HTTP API: validation, the state machine, queues, access."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import col, func, select

from telehealth.auth.models import AuditEvent, AuditOutcome
from telehealth.consults.models import ConsultRequest
from telehealth.db import Database
from telehealth.timers.models import Timer
from tests.consult_support import (
    accepted_request,
    new_request,
    own_patients,
    publish_week,
    request_body,
    service_of,
    slots,
)
from tests.helpers import assert_problem, login


async def _count_requests(db: Database) -> int:
    async with db.unit_of_work() as session:
        return int((await session.exec(select(func.count()).select_from(ConsultRequest))).one())


async def test_bad_requests_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    patient = (await own_patients(client, doctor))[0]
    for changes, field in (
        ({"diagnoses": ["X99.9"]}, "diagnoses[0]"),
        ({"diagnoses": ["I20-I25"]}, "diagnoses[0]"),
        ({"vital_signs": {"heart_rate": 900}}, "vital_signs.heart_rate"),
        ({"specialty_code": "000"}, "specialty_code"),
        ({"activity_type": "massage"}, "activity_type"),
        ({"reason": ""}, "reason"),
    ):
        response = await client.post(
            "/api/consults", json=request_body(patient, **changes), headers=doctor
        )
        assert response.status_code in (400, 422), response.text
        assert_problem(response, response.status_code, field=field)
    assert await _count_requests(db) == 0


async def test_icd10_search_for_pickers(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    found = await client.get(
        "/api/terminology/icd10", params={"q": "myocardial infarction"}, headers=doctor
    )
    assert found.status_code == 200
    assert "I21" in [c["code"] for c in found.json()]
    by_code = await client.get("/api/terminology/icd10", params={"q": "j18"}, headers=doctor)
    assert by_code.json()[0]["code"] == "J18"


async def test_commune_doctor_cannot_request_or_book_for_another_facility(
    client: httpx.AsyncClient, db: Database
) -> None:
    own = await login(client, "bs.xa1")
    other = await login(client, "bs.xa2")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patient = (await own_patients(client, own))[0]

    refused = await client.post("/api/consults", json=request_body(patient), headers=other)
    assert_problem(refused, 404)
    request = await accepted_request(client, own, cardio, patient)
    slot = (await slots(client, other, practitioner_role_id=role["id"]))[0]
    booking = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": slot["id"]},
        headers=other,
    )
    assert_problem(booking, 404)
    assert_problem(await client.get(f"/api/consults/{request['id']}", headers=other), 404)
    assert slot["id"] in [
        s["id"] for s in await slots(client, own, practitioner_role_id=role["id"])
    ]
    allowed = await client.post(
        "/api/appointments", json={"request_id": request["id"], "slot_id": slot["id"]}, headers=own
    )
    assert allowed.status_code == 201, allowed.text
    async with db.unit_of_work() as session:
        denied = (
            await session.exec(
                select(AuditEvent.action).where(
                    AuditEvent.outcome == AuditOutcome.DENIED,
                    col(AuditEvent.patient_id) == uuid.UUID(patient),
                )
            )
        ).all()
    assert {"create", "book", "read"} <= set(denied)


async def test_specialist_of_another_service_cannot_accept(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    dermatology = await login(client, "bs.da")
    cardio = await login(client, "bs.tim")
    request = await new_request(client, doctor, (await own_patients(client, doctor))[0])

    refused = await client.post(
        f"/api/consults/{request['id']}/accept", json={}, headers=dermatology
    )
    assert_problem(refused, 404)
    assert request["id"] not in [
        r["id"] for r in (await client.get("/api/consults", headers=dermatology)).json()
    ]
    assert request["id"] in [
        r["id"] for r in (await client.get("/api/consults", headers=cardio)).json()
    ]
    patient = await client.get(f"/api/consults/{request['id']}/patient", headers=cardio)
    assert patient.status_code == 200 and patient.json()["id"] == request["patient_id"]
    assert_problem(
        await client.get(f"/api/consults/{request['id']}/patient", headers=dermatology), 404
    )
    accepted = await client.post(f"/api/consults/{request['id']}/accept", json={}, headers=cardio)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"


async def test_illegal_transition_is_409_with_the_current_state(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    request = await accepted_request(
        client, doctor, cardio, (await own_patients(client, doctor))[0]
    )
    again = await client.post(f"/api/consults/{request['id']}/accept", json={}, headers=cardio)
    body = assert_problem(again, 409)
    assert "accepted" in str(body["detail"])
    no_reason = await client.post(f"/api/consults/{request['id']}/cancel", json={}, headers=doctor)
    assert_problem(no_reason, 422, field="reason")
    cancelled = await client.post(
        f"/api/consults/{request['id']}/cancel",
        json={"reason": "Bệnh nhân đã chuyển viện"},
        headers=doctor,
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    after = await client.post(f"/api/consults/{request['id']}/submit", json={}, headers=doctor)
    assert "cancelled" in str(assert_problem(after, 409)["detail"])


async def test_decline_back_to_queue_or_to_requester(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    patient = (await own_patients(client, doctor))[0]
    first = await new_request(client, doctor, patient)
    to_queue = await client.post(
        f"/api/consults/{first['id']}/decline",
        json={"reason": "Không đúng chuyên khoa trực", "return_to": "queue"},
        headers=cardio,
    )
    assert to_queue.status_code == 200 and to_queue.json()["status"] == "requested"
    second = await new_request(client, doctor, patient)
    back = await client.post(
        f"/api/consults/{second['id']}/decline",
        json={"reason": "Cần bổ sung điện tim", "return_to": "requester"},
        headers=cardio,
    )
    assert back.json()["status"] == "declined"
    history = (await client.get(f"/api/consults/{first['id']}/history", headers=doctor)).json()
    assert [(h["action"], h["to_status"]) for h in history] == [
        ("submit", "requested"),
        ("decline", "declined"),
        ("requeue", "requested"),
    ]
    assert history[1]["reason"] == "Không đúng chuyên khoa trực"
    resubmitted = await client.post(
        f"/api/consults/{second['id']}/resubmit", json={}, headers=doctor
    )
    assert resubmitted.json()["status"] == "requested"
    async with db.unit_of_work() as session:
        escalations = (
            await session.exec(
                select(Timer.state).where(
                    Timer.subject_id == uuid.UUID(second["id"]), Timer.kind == "request.escalate"
                )
            )
        ).all()
    assert sorted(escalations) == ["cancelled", "pending"]


async def test_coordinator_queue_is_ordered_by_priority_then_waiting(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa1")
    coordinator = await login(client, "dieuphoi")
    patients = await own_patients(client, doctor)
    routine_old = await new_request(client, doctor, patients[0])
    urgent = await new_request(client, doctor, patients[1], priority="urgent")
    routine_new = await new_request(client, doctor, patients[2])
    emergency = await new_request(client, doctor, patients[3], priority="emergency")
    draft = await new_request(client, doctor, patients[4], submit=False)

    queue = (await client.get("/api/consults", headers=coordinator)).json()
    assert [r["id"] for r in queue] == [
        emergency["id"],
        urgent["id"],
        routine_old["id"],
        routine_new["id"],
    ]
    mine = [r["id"] for r in (await client.get("/api/consults", headers=doctor)).json()]
    assert draft["id"] in mine
    other_station = await login(client, "bs.xa2")
    assert (await client.get("/api/consults", headers=other_station)).json() == []
    admin = await login(client, "quantri")
    assert_problem(await client.get("/api/consults", headers=admin), 403)


async def test_coordinator_assigns_and_the_assignee_books(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    coordinator = await login(client, "dieuphoi")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    request = await new_request(client, doctor, (await own_patients(client, doctor))[0])
    wrong = await client.post(
        f"/api/consults/{request['id']}/assign",
        json={
            "practitioner_role_id": (await service_of(client, await login(client, "bs.da")))["id"]
        },
        headers=coordinator,
    )
    assert_problem(wrong, 422, field="practitioner_role_id")
    assert_problem(
        await client.post(
            f"/api/consults/{request['id']}/assign",
            json={"practitioner_role_id": role["id"]},
            headers=doctor,
        ),
        403,
    )
    assigned = await client.post(
        f"/api/consults/{request['id']}/assign",
        json={"practitioner_role_id": role["id"]},
        headers=coordinator,
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assigned_role_id"] == role["id"]
    slot = (await client.get(f"/api/consults/{request['id']}/slots", headers=cardio)).json()[0]
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": slot["id"]},
        headers=cardio,
    )
    assert booked.status_code == 201, booked.text
    cancelled = await client.post(
        f"/api/appointments/{booked.json()['id']}/cancel",
        json={"reason": "Bác sĩ bận mổ cấp cứu"},
        headers=cardio,
    )
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.get(f"/api/consults/{request['id']}", headers=doctor)).json()[
        "status"
    ] == "accepted"
    assert slot["id"] in [
        s["id"] for s in await slots(client, doctor, practitioner_role_id=role["id"])
    ]


async def test_cancelling_a_scheduled_request_frees_its_slot(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    request = await accepted_request(
        client, doctor, cardio, (await own_patients(client, doctor))[0]
    )
    slot = (await slots(client, doctor, practitioner_role_id=role["id"]))[0]
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": slot["id"]},
        headers=doctor,
    )
    assert booked.status_code == 201
    cancelled = await client.post(
        f"/api/consults/{request['id']}/cancel",
        json={"reason": "Bệnh nhân tử vong"},
        headers=doctor,
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    appointment = await client.get(f"/api/appointments/{booked.json()['id']}", headers=doctor)
    assert appointment.json()["status"] == "cancelled"
    assert slot["id"] in [
        s["id"] for s in await slots(client, doctor, practitioner_role_id=role["id"])
    ]
    async with db.unit_of_work() as session:
        pending = (
            await session.exec(
                select(Timer).where(
                    col(Timer.subject_id).in_(
                        [uuid.UUID(booked.json()["id"]), uuid.UUID(request["id"])]
                    ),
                    Timer.state == "pending",
                )
            )
        ).all()
    assert pending == []


async def test_booking_an_unknown_slot_is_404(client: httpx.AsyncClient, db: Database) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    request = await accepted_request(
        client, doctor, cardio, (await own_patients(client, doctor))[0]
    )
    missing = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": str(uuid.uuid4())},
        headers=doctor,
    )
    assert_problem(missing, 404)
    malformed = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": "tomorrow"},
        headers=doctor,
    )
    assert_problem(malformed, 400)
    assert (await client.get(f"/api/consults/{request['id']}", headers=doctor)).json()[
        "status"
    ] == "accepted"
