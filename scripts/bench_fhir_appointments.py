"""Appointments for ``bench_fhir``: a few booked through the ORM, the rest copied in bulk.

A handful of real appointments (a consult request, a slot, the appointment and its video
room, one per demo specialist) are written through the ORM, so that the write-through maps
and stores them as the service does. Their stored JSON, with its ids, dates and status taken
out, is the skeleton of every other appointment: each gets new ids (appointment, request,
slot, room), a patient, a practitioner with their role and specialty, a requester, dates and
the status the service writes for them (``APPOINTMENT_STATUS``), and its search values from
``extract_values``, exactly as ``write_versions`` would have stored them. Past appointments
have two versions (booked, then their outcome), future ones one. The rows go to the three
store tables with asyncpg's COPY in chunks (or plain inserts on SQLite).

Only the FHIR store is filled: a system client's Appointment search reads nothing else
(``restrict_consult_search`` returns at once for clients), so the domain rows behind the
copied appointments are not written.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlmodel import SQLModel, col, select

from telehealth.auth.models import Role, UserAccount
from telehealth.availability.models import Slot, SlotStatus
from telehealth.consults.models import (
    ActivityType,
    Appointment,
    AppointmentStatus,
    ConsultRequest,
    ConsultStatus,
    Priority,
)
from telehealth.db import Database, insert_rows
from telehealth.directory.models import PractitionerRole
from telehealth.fhir.mapping_consults import APPOINTMENT_STATUS
from telehealth.fhir.models import FhirResource
from telehealth.fhir.search_params import extract_values
from telehealth.fhir.store import instant, stored_text, to_json
from telehealth.rtc.models import Room
from telehealth.timeutil import utcnow

CHUNK = 10_000
_HEAD_COLUMNS = ["resource_type", "resource_id", "version_id", "last_updated", "deleted", "text"]
_VALUE_COLUMNS = ["resource_type", "resource_id", "param", "system", "value", "last_updated"]
# The parts of a stored appointment that differ from one appointment to the next.
_VARIED = ("appointment", "request", "slot", "room", "patient", "practitioner", "role", "requester")


@dataclass(frozen=True)
class Booker:
    """A specialist who takes appointments: their practitioner and role ids, and the skeleton
    of an appointment with them (which carries the role's specialty)."""

    practitioner: str
    role: str
    skeleton: str


@dataclass
class Record:
    """What the copied appointments are drawn from."""

    searched: Booker  # the practitioner whose own appointments the selective search finds
    others: list[Booker]
    patients: list[str]
    requesters: list[str]
    stored: int = 0  # appointments in the store so far
    rng: random.Random = field(default_factory=lambda: random.Random(6))


async def book_real_appointments(db: Database, patient_ids: list[uuid.UUID]) -> Record:
    """One booked appointment (with its room) per demo specialist, through the ORM; the first
    specialist is the one searched for."""
    now = utcnow().replace(second=0, microsecond=0)
    async with db.unit_of_work() as session:
        requester = (
            await session.exec(select(UserAccount).where(UserAccount.username == "bs.xa1"))
        ).one()
        specialists = (
            await session.exec(
                select(PractitionerRole)
                .join(
                    UserAccount,
                    col(UserAccount.practitioner_id) == col(PractitionerRole.practitioner_id),
                )
                .where(
                    col(UserAccount.role) == Role.SPECIALIST,
                    col(PractitionerRole.specialty_id).is_not(None),
                )
                .order_by(col(UserAccount.username))
            )
        ).all()
        requesters = (
            await session.exec(
                select(UserAccount.practitioner_id).where(
                    col(UserAccount.role) == Role.REQUESTER,
                    col(UserAccount.practitioner_id).is_not(None),
                )
            )
        ).all()
        booked: list[tuple[PractitionerRole, Appointment, Room]] = []
        for index, role in enumerate(specialists):
            assert role.specialty_id is not None
            starts = now + timedelta(days=2, minutes=20 * index)
            request = ConsultRequest(
                patient_id=patient_ids[index],
                requesting_organization_id=requester.organization_id,
                requester_id=requester.id,
                activity_type=ActivityType.EXAM_TREATMENT,
                specialty_id=role.specialty_id,
                priority=Priority.ROUTINE,
                priority_rank=2,
                reason="benchmark",
                clinical_summary="benchmark",
                status=ConsultStatus.SCHEDULED,
                assigned_role_id=role.id,
                assigned_practitioner_id=role.practitioner_id,
            )
            slot = Slot(
                practitioner_role_id=role.id,
                practitioner_id=role.practitioner_id,
                organization_id=role.organization_id,
                specialty_id=role.specialty_id,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=20),
                status=SlotStatus.BOOKED,
            )
            session.add_all([request, slot])
            await session.flush()
            appointment = Appointment(
                request_id=request.id,
                slot_id=slot.id,
                patient_id=request.patient_id,
                practitioner_id=role.practitioner_id,
                practitioner_role_id=role.id,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                booked_by=requester.id,
            )
            session.add(appointment)
            await session.flush()
            room = Room(
                appointment_id=appointment.id,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                opens_at=slot.starts_at - timedelta(minutes=15),
                closes_at=slot.ends_at + timedelta(minutes=30),
            )
            session.add(room)
            booked.append((role, appointment, room))
    async with db.unit_of_work() as session:
        bookers = []
        for role, appointment, room in booked:
            stored = await session.get(FhirResource, ("Appointment", str(appointment.id)))
            assert stored is not None, "the write-through stores every appointment"
            resource = json.loads(stored.text)
            del resource["meta"]
            skeleton = _skeleton(
                to_json(resource),
                appointment=appointment.id,
                request=appointment.request_id,
                slot=appointment.slot_id,
                room=room.id,
                patient=appointment.patient_id,
                practitioner=role.practitioner_id,
                role=role.id,
                requester=requester.practitioner_id,
                start=instant(appointment.starts_at),
                end=instant(appointment.ends_at),
                created=instant(appointment.created_at),
            )
            bookers.append(Booker(str(role.practitioner_id), str(role.id), skeleton))
    return Record(
        searched=bookers[0],
        others=bookers[1:],
        patients=[str(p) for p in patient_ids],
        requesters=[str(r) for r in requesters],
        stored=len(bookers),
    )


def _skeleton(text: str, **parts: Any) -> str:
    """The stored text with each varied part replaced by a placeholder (``@patient@``)."""
    assert text.count('"status":"booked"') == 1, "one status: the appointment's"
    text = text.replace('"status":"booked"', '"status":"@status@"')
    for name, value in parts.items():
        if value is not None:
            assert str(value) in text, name
            text = text.replace(str(value), f"@{name}@")
    return text


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def widen(record: Record, practitioners: int, patients: int, requesters: int) -> None:
    """More people for a large record: practitioners of the demo's specialties (a role each),
    patients and requesting doctors; ids only, as other facilities would have them."""
    rng = record.rng
    skeletons = [record.searched.skeleton] + [b.skeleton for b in record.others]
    record.others += [
        Booker(_new_id(rng), _new_id(rng), skeletons[i % len(skeletons)])
        for i in range(practitioners)
    ]
    record.patients += [_new_id(rng) for _ in range(patients)]
    record.requesters += [_new_id(rng) for _ in range(requesters)]


def _versions(
    now: datetime, rng: random.Random
) -> tuple[dict[str, str], list[tuple[str, datetime]]]:
    """Dates of one appointment (a 20-minute slot in working hours within the last year or
    the next two months) and its versions: (status, written at), oldest first."""
    day = now.date() - timedelta(days=rng.randrange(-60, 365))
    start = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(
        hours=1 + rng.randrange(9), minutes=20 * rng.randrange(3)
    )
    # Booked one to fourteen days ahead; an appointment further ahead, in the last two weeks.
    created = start - timedelta(days=1 + rng.randrange(14), seconds=rng.uniform(0, 36_000))
    if created > now:
        created = now - timedelta(seconds=rng.uniform(60, 14 * 86_400))
    end = start + timedelta(minutes=20)
    dates = {"start": instant(start), "end": instant(end), "created": instant(created)}
    booked = str(AppointmentStatus.BOOKED)
    draw = rng.random()
    if start > now:
        if draw < 0.08:
            return dates, [
                (booked, created),
                (str(AppointmentStatus.CANCELLED), created + (now - created) * rng.random()),
            ]
        return dates, [(booked, created)]
    if draw < 0.10:
        return dates, [
            (booked, created),
            (str(AppointmentStatus.CANCELLED), created + (start - created) * rng.random()),
        ]
    if draw < 0.15:
        return dates, [
            (booked, created),
            (str(AppointmentStatus.NO_SHOW), end + timedelta(seconds=rng.uniform(1800, 3600))),
        ]
    return dates, [
        (booked, created),
        (str(AppointmentStatus.COMPLETED), end + timedelta(seconds=rng.uniform(60, 1800))),
    ]


@dataclass
class Rows:
    heads: list[tuple[Any, ...]] = field(default_factory=list)
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    values: list[tuple[Any, ...]] = field(default_factory=list)


def appointment_rows(record: Record, count: int, searched: int) -> Iterator[Rows]:
    """``count`` appointments in chunks, the first ``searched`` of them with the searched
    practitioner, the rest with others; each stored as ``write_versions`` stores it."""
    rng, now = record.rng, utcnow()
    rows = Rows()
    for index in range(count):
        booker = record.searched if index < searched else rng.choice(record.others)
        parts = {
            "appointment": _new_id(rng),
            "request": _new_id(rng),
            "slot": _new_id(rng),
            "room": _new_id(rng),
            "patient": rng.choice(record.patients),
            "practitioner": booker.practitioner,
            "role": booker.role,
            "requester": rng.choice(record.requesters),
        }
        dates, versions = _versions(now, rng)
        text = booker.skeleton
        for name in (*_VARIED, *dates):
            text = text.replace(f"@{name}@", parts.get(name) or dates[name])
        resource_id = parts["appointment"]
        for number, (status, at) in enumerate(versions, start=1):
            moment = min(at, now)  # the service stamps milliseconds
            written = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            resource = json.loads(text.replace("@status@", APPOINTMENT_STATUS[status]))
            stored = stored_text(resource, number, instant(written))
            rows.versions.append(("Appointment", resource_id, number, written, False, stored))
        rows.heads.append(rows.versions[-1])
        current = rows.heads[-1][3]
        rows.values += [
            ("Appointment", resource_id, param, system, value, current)
            for param, system, value in extract_values(resource)
        ]
        if len(rows.heads) == CHUNK:
            yield rows
            rows = Rows()
    if rows.heads:
        yield rows


async def copy_appointments(
    db: Database, dsn: str | None, record: Record, count: int, searched: int, deadline: float
) -> None:
    """Store ``count`` more appointments: COPY on PostgreSQL (``dsn``), inserts on SQLite;
    a chunk at a time, and no chunk begun after ``deadline`` (``time.perf_counter()``)."""
    tables = {
        "fhir_resource": _HEAD_COLUMNS,
        "fhir_resource_version": _HEAD_COLUMNS,
        "fhir_search_value": _VALUE_COLUMNS,
    }
    connection = await asyncpg.connect(dsn) if dsn else None
    try:
        for rows in appointment_rows(record, count, searched):
            if time.perf_counter() > deadline:
                print(f"  stopped at the time bound, {record.stored:,} stored", flush=True)
                break
            chunks = dict(zip(tables, (rows.heads, rows.versions, rows.values), strict=True))
            if connection is not None:
                async with connection.transaction():
                    for table, records in chunks.items():
                        await connection.copy_records_to_table(
                            table, records=records, columns=tables[table]
                        )
            else:
                async with db.unit_of_work() as session:
                    for table, records in chunks.items():
                        await insert_rows(
                            session,
                            SQLModel.metadata.tables[table],
                            [dict(zip(tables[table], r, strict=True)) for r in records],
                        )
            record.stored += len(rows.heads)
            if record.stored % 50_000 < CHUNK:
                print(f"  {record.stored:,} appointments stored", flush=True)
    finally:
        if connection is not None:
            await connection.close()
