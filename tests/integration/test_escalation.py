"""Escalation of unanswered requests, for each priority: the next specialist of the service,
then the coordinator on duty, then expiry; each step recorded, told and timed once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import col, select

from telehealth.auth.models import Role, UserAccount
from telehealth.consults.models import ConsultEscalation, ConsultRequest
from telehealth.db import Database
from telehealth.directory.models import Practitioner, PractitionerRole
from telehealth.settings import Settings
from tests.consult_support import new_request, own_patients, service_of
from tests.handler_support import fire, notifications, pending, run_again, timers_of
from tests.helpers import login, sign_in
from tests.rtc_support import user_id

ESCALATE = "request.escalate"


async def second_cardiologist_and_idle_coordinator(
    db: Database, tim_role: dict[str, str]
) -> uuid.UUID:
    """Another cardiologist at bs.tim's hospital, and a coordinator there who is not signed in
    (first by username, so "on duty" must come from the session, not the name)."""
    async with db.unit_of_work() as session:
        person = Practitioner(full_name="BS. Ngô Văn Tâm", name_folded="bs. ngo van tam")
        session.add(person)
        await session.flush()
        role = PractitionerRole(
            practitioner_id=person.id,
            organization_id=uuid.UUID(tim_role["organization_id"]),
            specialty_id=uuid.UUID(tim_role["specialty_id"]),
        )
        session.add(role)
        for username, kind, practitioner in (
            ("bs.tam", Role.SPECIALIST, person.id),
            ("a.dieuphoi", Role.COORDINATOR, None),
        ):
            session.add(
                UserAccount(
                    username=username,
                    password_hash="!",
                    display_name=username,
                    role=kind,
                    organization_id=uuid.UUID(tim_role["organization_id"]),
                    practitioner_id=practitioner,
                )
            )
        await session.flush()
        return role.id


async def steps(db: Database, request_id: str) -> list[ConsultEscalation]:
    async with db.unit_of_work() as session:
        rows = await session.exec(
            select(ConsultEscalation)
            .where(col(ConsultEscalation.request_id) == uuid.UUID(request_id))
            .order_by(col(ConsultEscalation.level))
        )
        return list(rows.all())


async def request_row(db: Database, request_id: str) -> ConsultRequest:
    async with db.unit_of_work() as session:
        found = await session.get(ConsultRequest, uuid.UUID(request_id))
        assert found is not None
        return found


@pytest.mark.parametrize("priority", ["emergency", "urgent", "routine"])
async def test_escalation_chain(
    client: httpx.AsyncClient, db: Database, settings: Settings, priority: str
) -> None:
    doctor = await login(client, "bs.xa1")
    tim_role = await service_of(client, await login(client, "bs.tim"))
    tam_role = await second_cardiologist_and_idle_coordinator(db, tim_role)
    await sign_in(client, "dieuphoi")  # signed in: on duty
    patient = (await own_patients(client, doctor))[0]
    created = await new_request(
        client,
        doctor,
        patient,
        priority=priority,
        target_organization_id=tim_role["organization_id"],
    )
    deadline = timedelta(seconds=settings.escalation_deadlines_s[priority])
    (first,) = pending(await timers_of(db, created["id"], ESCALATE))
    assert first.due_at == datetime.fromisoformat(created["submitted_at"]) + deadline
    specialists = sorted([uuid.UUID(tim_role["id"]), tam_role])
    tim, tam, on_duty = [await user_id(db, u) for u in ("bs.tim", "bs.tam", "dieuphoi")]
    account_of = {uuid.UUID(tim_role["id"]): tim, tam_role: tam}

    expected = [
        ("specialist", specialists[0]),
        ("specialist", specialists[1]),
        ("coordinator", None),
    ]
    for level, (kind, role_id) in enumerate(expected, start=1):
        (call,) = await fire(db, settings, [ESCALATE])
        assert call.payload == {"priority": priority, "level": level}
        await run_again(db, settings, call)  # a re-claim: no second step
        taken = await steps(db, created["id"])
        assert [(s.level, s.target_kind, s.practitioner_role_id) for s in taken][-1] == (
            level,
            kind,
            role_id,
        )
        assert len(taken) == level
        request = await request_row(db, created["id"])
        assert request.status == "requested" and request.assigned_role_id == role_id
        told = [n.recipient_id for n in await notifications(db, created["id"], "request.escalated")]
        assert told[-1] == (account_of[role_id] if role_id else on_duty) and len(told) == level
        (following,) = pending(await timers_of(db, created["id"], ESCALATE))
        assert following.payload["level"] == level + 1
        assert following.due_at - taken[-1].at == pytest.approx(deadline, abs=timedelta(seconds=5))
    assert taken[-1].user_id == on_duty

    (last,) = await fire(db, settings, [ESCALATE])
    await run_again(db, settings, last)
    request = await request_row(db, created["id"])
    assert request.status == "expired"
    assert pending(await timers_of(db, created["id"])) == []
    assert len(await notifications(db, created["id"], "request.expired")) == 1
    history = await client.get(f"/api/consults/{created['id']}/history", headers=doctor)
    actions = [(h["action"], h["actor_kind"]) for h in history.json()]
    assert actions[-4:] == [("escalate", "system")] * 3 + [("expire", "system")]


async def test_escalated_request_reaches_the_specialist_and_acceptance_ends_it(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    tim_role = await service_of(client, cardio)
    patient = (await own_patients(client, doctor))[1]
    created = await new_request(
        client,
        doctor,
        patient,
        priority="urgent",
        target_organization_id=tim_role["organization_id"],
    )
    (call,) = await fire(db, settings, [ESCALATE])
    queue = await client.get("/api/consults", headers=cardio)
    assert created["id"] in [item["id"] for item in queue.json()]
    accepted = await client.post(f"/api/consults/{created['id']}/accept", json={}, headers=cardio)
    assert accepted.status_code == 200, accepted.text
    assert pending(await timers_of(db, created["id"], ESCALATE)) == []
    await run_again(db, settings, call)  # a late copy of an earlier step: nothing
    second = dict(call.payload, level=2)
    await run_again(
        db, settings, type(call)(call.timer_id, call.kind, call.subject_id, call.due_at, 1, second)
    )
    assert len(await steps(db, created["id"])) == 1
    assert (await request_row(db, created["id"])).status == "accepted"
