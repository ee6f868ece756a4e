"""A consult from request to completed appointment, through the HTTP API, with what it writes."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import col, select

from telehealth.consults.models import Appointment, ConsultTransition
from telehealth.db import Database
from telehealth.notifications.models import Notification
from telehealth.timers.models import Timer, TimerState
from tests.consult_support import accepted_request, own_patients, publish_week, service_of, slots
from tests.helpers import assert_problem, login


async def test_request_accept_book_reschedule_complete(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patient = (await own_patients(client, doctor))[0]
    request = await accepted_request(client, doctor, cardio, patient)
    assert request["status"] == "accepted"
    assert [d["code"] for d in request["diagnoses"]] == ["I20.0", "I10"]

    offered = (await client.get(f"/api/consults/{request['id']}/slots", headers=doctor)).json()
    assert offered and offered == sorted(offered, key=lambda s: s["starts_at"])
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": offered[0]["id"]},
        headers=doctor,
    )
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert appointment["starts_at"] == offered[0]["starts_at"]
    free_now = await slots(client, doctor, practitioner_role_id=role["id"])
    assert offered[0]["id"] not in [s["id"] for s in free_now]

    again = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": offered[1]["id"]},
        headers=doctor,
    )
    body = assert_problem(again, 409)
    assert "scheduled" in str(body["detail"])

    moved = await client.post(
        f"/api/appointments/{appointment['id']}/reschedule",
        json={"slot_id": offered[2]["id"], "reason": "Bệnh nhân xin đổi giờ"},
        headers=doctor,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["slot_id"] == offered[2]["id"]
    free_now = await slots(client, doctor, practitioner_role_id=role["id"])
    assert offered[0]["id"] in [s["id"] for s in free_now]

    started = await client.post(f"/api/appointments/{appointment['id']}/start", headers=cardio)
    assert started.status_code == 200, started.text
    done = await client.post(
        f"/api/appointments/{appointment['id']}/complete", json={}, headers=cardio
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"

    history = (await client.get(f"/api/consults/{request['id']}/history", headers=doctor)).json()
    assert [h["action"] for h in history] == [
        "submit",
        "accept",
        "schedule",
        "reschedule",
        "start",
        "complete",
    ]
    assert history[3]["reason"] == "Bệnh nhân xin đổi giờ"

    async with db.unit_of_work() as session:
        appointment_id = uuid.UUID(appointment["id"])
        timers = (await session.exec(select(Timer).where(Timer.subject_id == appointment_id))).all()
        notes = (
            await session.exec(
                select(Notification.kind).where(Notification.subject_id == appointment_id)
            )
        ).all()
        escalations = (
            await session.exec(select(Timer).where(Timer.subject_id == uuid.UUID(request["id"])))
        ).all()
        transitions = (
            await session.exec(
                select(ConsultTransition).where(
                    col(ConsultTransition.request_id) == uuid.UUID(request["id"])
                )
            )
        ).all()
        stored = await session.get(Appointment, appointment_id)
    assert stored is not None and str(stored.slot_id) == offered[2]["id"]
    # booked, then moved: the first set cancelled, the second cancelled when completed
    assert {t.kind for t in timers} == {"appointment.reminder", "room.open", "appointment.no_show"}
    assert all(t.state == TimerState.CANCELLED for t in timers)
    reminders = [t for t in timers if t.kind == "appointment.reminder"]
    assert {t.payload["lead_minutes"] for t in reminders} <= {1440, 15}
    assert 15 in {t.payload["lead_minutes"] for t in reminders}
    assert notes.count("appointment.booked") == 2 and notes.count("appointment.rescheduled") == 2
    assert [(t.kind, t.state) for t in escalations] == [("request.escalate", TimerState.CANCELLED)]
    assert all(t.actor_id is not None for t in transitions)


async def test_reschedule_to_a_taken_slot_changes_nothing(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patients = await own_patients(client, doctor)
    first = await accepted_request(client, doctor, cardio, patients[0])
    second = await accepted_request(client, doctor, cardio, patients[1])
    offered = await slots(client, doctor, practitioner_role_id=role["id"])
    mine = await client.post(
        "/api/appointments",
        json={"request_id": first["id"], "slot_id": offered[0]["id"]},
        headers=doctor,
    )
    theirs = await client.post(
        "/api/appointments",
        json={"request_id": second["id"], "slot_id": offered[1]["id"]},
        headers=doctor,
    )
    assert mine.status_code == theirs.status_code == 201

    refused = await client.post(
        f"/api/appointments/{mine.json()['id']}/reschedule",
        json={"slot_id": offered[1]["id"]},
        headers=doctor,
    )
    assert (
        assert_problem(refused, 409)["detail"]
        == "Khung giờ không còn trống / slot no longer available"
    )
    kept = (await client.get(f"/api/appointments/{mine.json()['id']}", headers=doctor)).json()
    assert kept["slot_id"] == offered[0]["id"] and kept["status"] == "booked"
    free = {s["id"] for s in await slots(client, doctor, practitioner_role_id=role["id"])}
    assert offered[0]["id"] not in free and offered[1]["id"] not in free
    history = (await client.get(f"/api/consults/{first['id']}/history", headers=doctor)).json()
    assert [h["action"] for h in history][-1] == "schedule"
