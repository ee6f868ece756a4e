"""Specialists and coordinators read (never change) the patient of a consult visible to them,
through GET /api/patients/{id}; everyone else still gets 404. Each read is audited."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import col, select

from telehealth.auth.models import AuditEvent
from telehealth.db import Database
from telehealth.directory.models import Patient
from tests.consult_support import new_request, own_patients, service_of
from tests.helpers import login


async def test_patient_readable_through_a_visible_consult_only(
    client: httpx.AsyncClient, db: Database
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    coordinator = await login(client, "dieuphoi")
    paediatrics = await login(client, "bs.nhi")
    obstetrics = await login(client, "bs.san")
    patient = (await own_patients(client, doctor))[3]
    path = f"/api/patients/{patient}"

    for headers in (cardio, coordinator, paediatrics):  # no consult yet: unknown to them
        assert (await client.get(path, headers=headers)).status_code == 404

    hospital = (await service_of(client, cardio))["organization_id"]
    consult = await new_request(client, doctor, patient, target_organization_id=hospital)
    for headers in (cardio, coordinator):
        read = await client.get(path, headers=headers)
        assert read.status_code == 200, read.text
        assert read.json()["id"] == patient
    for headers in (paediatrics, obstetrics):  # another specialty's specialists: still 404
        assert (await client.get(path, headers=headers)).status_code == 404

    async with db.unit_of_work() as session:
        before = await session.get(Patient, uuid.UUID(patient))
        assert before is not None
        name = before.full_name
    for headers in (cardio, coordinator):  # reading is not writing
        changed = await client.patch(path, json={"phone": "0909123456"}, headers=headers)
        assert changed.status_code in (403, 404), changed.text
    async with db.unit_of_work() as session:
        after = await session.get(Patient, uuid.UUID(patient))
        audited = (
            await session.exec(
                select(AuditEvent).where(
                    col(AuditEvent.patient_id) == uuid.UUID(patient),
                    col(AuditEvent.action) == "read",
                    col(AuditEvent.entity_type) == "Patient",
                )
            )
        ).all()
    assert after is not None and after.full_name == name and after.phone == before.phone
    granted = [a for a in audited if a.outcome == "success"]
    assert [a.detail for a in granted] == [f"through consult {consult['id']}"] * 2
    refused = [a for a in audited if a.outcome != "success"]
    assert len(refused) == 5
