"""What one booking writes, row by row (its hot path writes with Core statements, which no ORM
event sees, so this is checked here), and its FHIR versions, valid R4B."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import SQLModel, col, select

from telehealth.auth.models import AuditEvent, AuditOutcome
from telehealth.consults.models import Appointment, ConsultStatus, ConsultTransition
from telehealth.db import Database
from telehealth.errors import Conflict
from telehealth.fhir.models import FhirResource, FhirResourceVersion, FhirSearchValue
from telehealth.fhir.search_params import extract_values
from telehealth.fhir.store import PendingVersion, write_versions
from telehealth.notifications.models import Notification
from telehealth.rtc.models import Room, RoomParticipant
from telehealth.timers.models import Timer, TimerState
from tests.consult_support import (
    accepted_request,
    me,
    own_patients,
    publish_week,
    service_of,
    well_ahead,
)
from tests.helpers import login

BOOKED_RESOURCES = ("Appointment", "Slot", "ServiceRequest", "Task")


async def _row_counts(db: Database) -> dict[str, int]:
    async with db.unit_of_work() as session:
        connection = await session.connection()
        return {
            table.name: (
                await connection.execute(sa.select(sa.func.count()).select_from(table))
            ).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


async def _versions_by_type(db: Database) -> dict[str, int]:
    async with db.unit_of_work() as session:
        rows = await session.exec(
            select(FhirResourceVersion.resource_type, sa.func.count()).group_by(
                col(FhirResourceVersion.resource_type)
            )
        )
        return dict(rows.all())


async def _book(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """A booking by bs.xa1 with bs.tim; returns the appointment, request, and both users' ids,
    with every login and preparation done before the caller's snapshot."""
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patient = (await own_patients(client, doctor))[0]
    request = await accepted_request(client, doctor, cardio, patient)
    offered = (await client.get(f"/api/consults/{request['id']}/slots", headers=doctor)).json()
    requester, specialist = (await me(client, doctor))["id"], (await me(client, cardio))["id"]
    return {"slot": well_ahead(offered), "headers": doctor}, request, requester, specialist


async def test_a_booking_writes_exactly_its_rows(client: httpx.AsyncClient, db: Database) -> None:
    prepared, request, requester, specialist = await _book(client)
    before, versions_before = await _row_counts(db), await _versions_by_type(db)
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": prepared["slot"]["id"]},
        headers=prepared["headers"],
    )
    assert booked.status_code == 201, booked.text
    after, versions_after = await _row_counts(db), await _versions_by_type(db)
    appointment_id = uuid.UUID(booked.json()["id"])

    async with db.unit_of_work() as session:
        timers = (await session.exec(select(Timer).where(Timer.subject_id == appointment_id))).all()
        notes = (
            await session.exec(
                select(Notification).where(Notification.subject_id == appointment_id)
            )
        ).all()
        room = (await session.exec(select(Room).where(Room.appointment_id == appointment_id))).one()
        people = (
            await session.exec(select(RoomParticipant).where(RoomParticipant.room_id == room.id))
        ).all()
        audit = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.entity_id == str(appointment_id))
            )
        ).all()
        transition = (
            await session.exec(
                select(ConsultTransition).where(
                    col(ConsultTransition.request_id) == uuid.UUID(request["id"]),
                    ConsultTransition.action == "schedule",
                )
            )
        ).one()

    changed = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    versions = changed.pop("fhir_search_value", None)  # replaced, see the FHIR test below
    assert changed == {
        "appointment": 1,
        "consult_transition": 1,
        "timer": len(timers),
        "room": 1,
        "room_participant": 2,
        "notification": 2,
        "audit_event": 1,
        "fhir_resource": 1,  # the new Appointment; the Slot and the Task move
        "fhir_resource_version": 3,
    }, versions
    # The ServiceRequest (and its vital signs Observation) are mapped again with the request,
    # but their content does not change when it is scheduled: no version.
    assert {
        kind: versions_after[kind] - versions_before.get(kind, 0)
        for kind in versions_after
        if versions_after[kind] != versions_before.get(kind, 0)
    } == {"Appointment": 1, "Slot": 1, "Task": 1}
    assert {t.kind for t in timers} >= {"room.open", "appointment.no_show"}
    assert all(t.state == TimerState.PENDING and t.attempts == 0 for t in timers)
    assert sorted((str(n.recipient_id), n.kind, n.channel) for n in notes) == sorted(
        (person, "appointment.booked", "in_app") for person in (requester, specialist)
    )
    assert all(n.params["request_id"] == request["id"] for n in notes)
    assert sorted((str(p.user_id), p.role) for p in people) == sorted(
        [(requester, "requester"), (specialist, "specialist")]
    )
    assert [(a.action, a.outcome, a.actor_id) for a in audit] == [
        ("book", AuditOutcome.SUCCESS, requester)
    ]
    assert (transition.from_status, transition.to_status) == (
        ConsultStatus.ACCEPTED,
        ConsultStatus.SCHEDULED,
    )


async def test_a_booked_consult_is_valid_r4b_with_its_search_values(
    client: httpx.AsyncClient, db: Database
) -> None:
    prepared, request, _, _ = await _book(client)
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": prepared["slot"]["id"]},
        headers=prepared["headers"],
    )
    assert booked.status_code == 201, booked.text
    ids = {
        "Appointment": booked.json()["id"],
        "Slot": prepared["slot"]["id"],
        "ServiceRequest": request["id"],
        "Task": request["id"],
    }
    async with db.unit_of_work() as session:
        for kind in BOOKED_RESOURCES:
            head = await session.get(FhirResource, (kind, ids[kind]))
            assert head is not None, kind
            resource = json.loads(head.text)
            get_fhir_model_class(kind).model_validate(resource)
            assert resource["meta"]["versionId"] == str(head.version_id)
            history = (
                await session.exec(
                    select(FhirResourceVersion.version_id).where(
                        FhirResourceVersion.resource_type == kind,
                        FhirResourceVersion.resource_id == ids[kind],
                    )
                )
            ).all()
            assert sorted(history) == list(range(1, head.version_id + 1)), kind
            values = (
                await session.exec(
                    select(
                        FhirSearchValue.param, FhirSearchValue.system, FhirSearchValue.value
                    ).where(
                        FhirSearchValue.resource_type == kind,
                        FhirSearchValue.resource_id == ids[kind],
                    )
                )
            ).all()
            assert sorted(values) == sorted(extract_values(resource)), kind
            if kind == "Appointment":
                assert resource["status"] == "booked"
                assert resource["slot"] == [{"reference": f"Slot/{ids['Slot']}"}]
                assert resource["extension"][0]["url"].endswith("Appointment.virtualService")
                room = (
                    await session.exec(
                        select(Room).where(Room.appointment_id == uuid.UUID(ids[kind]))
                    )
                ).one()
                assert {"url": "sessionKey", "valueString": str(room.id)} in resource["extension"][
                    0
                ]["extension"]
            if kind == "ServiceRequest":
                assert not [
                    s
                    for s in resource.get("supportingInfo", [])
                    if s["reference"].startswith("DocumentReference/")
                ]
            if kind == "Slot":
                assert resource["status"] == "busy"
        stored = await session.get(Appointment, uuid.UUID(ids["Appointment"]))
        assert stored is not None and str(stored.slot_id) == ids["Slot"]


async def test_two_writers_of_one_resource_cannot_both_move_its_head(db: Database) -> None:
    """Two transactions write the next version of one resource at once: on PostgreSQL the
    second waits for the first and then gets 409; on SQLite they run one after the other.
    Either way the history stays 1..n with the head at n, never two versions with one number."""
    resource = {"resourceType": "Basic", "id": str(uuid.uuid4()), "code": {"text": "race"}}
    async with db.unit_of_work() as session:
        await session.run_sync(lambda s: write_versions(s, [PendingVersion(resource)]))
    first_wrote = asyncio.Event()
    release = asyncio.Event()

    async def writer(text: str, hold: bool) -> str:
        try:
            async with db.unit_of_work() as session:
                changed = {**resource, "code": {"text": text}}
                await session.run_sync(lambda s: write_versions(s, [PendingVersion(changed)]))
                if hold:
                    first_wrote.set()
                    await release.wait()
        except Conflict:
            return "conflict"
        return "written"

    first = asyncio.create_task(writer("first", hold=True))
    await first_wrote.wait()
    second = asyncio.create_task(writer("second", hold=False))
    await asyncio.sleep(0.3)  # the second writer is now blocked on the first (PostgreSQL)
    release.set()
    outcomes = [await first, await second]
    async with db.unit_of_work() as session:
        head = await session.get(FhirResource, ("Basic", resource["id"]))
        history = (
            await session.exec(
                select(FhirResourceVersion.version_id).where(
                    FhirResourceVersion.resource_id == resource["id"]
                )
            )
        ).all()
    assert head is not None
    assert sorted(history) == list(range(1, head.version_id + 1))
    if db.dialect == "postgresql":
        assert outcomes == ["written", "conflict"] and head.version_id == 2
        assert json.loads(head.text)["code"]["text"] == "first"
    else:
        assert outcomes == ["written", "written"] and head.version_id == 3


async def test_the_booked_request_keeps_its_attachments_in_fhir(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A booking re-maps the ServiceRequest; the files attached before it stay referenced."""
    prepared, request, _, _ = await _book(client)
    attached = await client.post(
        f"/api/consults/{request['id']}/attachments",
        files={"data": ("ecg.pdf", b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n", "application/pdf")},
        headers=prepared["headers"],
    )
    assert attached.status_code == 201, attached.text
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": prepared["slot"]["id"]},
        headers=prepared["headers"],
    )
    assert booked.status_code == 201, booked.text
    async with db.unit_of_work() as session:
        head = await session.get(FhirResource, ("ServiceRequest", request["id"]))
        assert head is not None
        resource = json.loads(head.text)
    assert resource["status"] == "active"  # the version the booking wrote
    assert {"reference": f"DocumentReference/{attached.json()['id']}"} in resource["supportingInfo"]
