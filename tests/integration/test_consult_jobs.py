"""The functions timer handlers call: idempotent, acting only while the state is as expected."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update
from sqlmodel import col

from telehealth.availability.models import Slot, SlotStatus
from telehealth.availability.service import release_expired_hold
from telehealth.consults.booking import no_show_if_unattended
from telehealth.consults.models import Appointment, ConsultRequest, ConsultTransition
from telehealth.consults.service import expire_request
from telehealth.db import Database
from telehealth.timeutil import utcnow
from tests.consult_support import (
    accepted_request,
    new_request,
    own_patients,
    publish_week,
    service_of,
    slots,
)
from tests.helpers import login


async def test_no_show_expiry_and_hold_release_run_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patients = await own_patients(client, doctor)
    request = await accepted_request(client, doctor, cardio, patients[0])
    free = await slots(client, doctor, practitioner_role_id=role["id"])
    booked = (
        await client.post(
            "/api/appointments",
            json={"request_id": request["id"], "slot_id": free[0]["id"]},
            headers=doctor,
        )
    ).json()
    unanswered = await new_request(client, doctor, patients[1], priority="emergency")
    assert (
        await client.post(
            f"/api/slots/{free[1]['id']}/hold", json={"request_id": request["id"]}, headers=doctor
        )
    ).status_code == 200

    for expected in (True, False):
        async with db.unit_of_work() as session:
            assert await no_show_if_unattended(session, uuid.UUID(booked["id"])) is expected
        async with db.unit_of_work() as session:
            assert await expire_request(session, uuid.UUID(unanswered["id"]), "Quá hạn") is expected
    async with db.unit_of_work() as session:
        assert await release_expired_hold(session, uuid.UUID(free[1]["id"])) is False  # not yet
        await session.exec(
            update(Slot).where(col(Slot.id) == uuid.UUID(free[1]["id"])).values(hold_until=utcnow())
        )
    async with db.unit_of_work() as session:
        assert await release_expired_hold(session, uuid.UUID(free[1]["id"])) is True
        slot = await session.get(Slot, uuid.UUID(free[1]["id"]))
        appointment = await session.get(Appointment, uuid.UUID(booked["id"]))
        rebookable = await session.get(ConsultRequest, uuid.UUID(request["id"]))
        expired = await session.get(ConsultRequest, uuid.UUID(unanswered["id"]))
        system_actions = await session.exec(
            ConsultTransition.__table__.select().where(
                ConsultTransition.__table__.c.actor_kind == "system"
            )
        )
        actions = sorted(row.action for row in system_actions)
    assert slot is not None and slot.status == SlotStatus.FREE
    assert appointment is not None and appointment.status == "no_show"
    assert rebookable is not None and rebookable.status == "accepted"
    assert expired is not None and expired.status == "expired"
    assert actions == ["expire", "no_show"]
