"""Scheduling operations, Argonaut / IHE ITI-115..117 style: ``Appointment/$find`` proposes
free slots as Appointments, ``Appointment/$book`` (and a plain ``POST /fhir/Appointment``) books
one through the same atomic booking as ``POST /api/appointments``: the slot is claimed by a
conditional UPDATE and guarded by the database, so a taken slot answers 409."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import require_scope
from telehealth.auth.principal import Caller
from telehealth.availability.models import Slot
from telehealth.consults.booking import book_slot, slots_for_request
from telehealth.consults.open_slots import find_slots, search_slots
from telehealth.directory.service import specialty_by_code
from telehealth.errors import BadRequest, InvalidInput
from telehealth.fhir import store
from telehealth.fhir.store import StoredVersion, instant
from telehealth.fhir.writethrough import flush_versions
from telehealth.settings import Settings
from telehealth.timeutil import as_utc

Resource = dict[str, Any]
FIND_PARAMS = ("start", "end", "specialty", "practitioner", "service-request", "_count")


def _id_of(reference: str, resource_type: str, name: str) -> uuid.UUID:
    text = reference.removeprefix(f"{resource_type}/")
    try:
        return uuid.UUID(text.split("/")[-1])
    except ValueError as exc:
        raise BadRequest(f"{name}: '{reference}' is not a {resource_type} reference") from exc


def _moment(name: str, text: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text.replace(" ", "+").replace("Z", "+00:00")))
    except ValueError as exc:
        raise BadRequest(
            f"{name}: '{text}' is not an instant such as 2026-12-01T08:00+07:00"
        ) from exc


def parameters_from(body: Resource) -> list[tuple[str, str]]:
    """A ``Parameters`` body as (name, value) pairs of its primitive values."""
    if body.get("resourceType") != "Parameters":
        raise BadRequest("Send the operation's input as a Parameters resource")
    pairs = []
    for parameter in body.get("parameter", []):
        for key, value in parameter.items():
            if key.startswith("value"):
                pairs.append((parameter.get("name", ""), str(value)))
    return pairs


def _proposal(slot: Slot, request_id: uuid.UUID | None) -> Resource:
    resource: Resource = {
        "resourceType": "Appointment",
        "status": "proposed",
        "start": instant(slot.starts_at),
        "end": instant(slot.ends_at),
        "slot": [{"reference": f"Slot/{slot.id}"}],
        "participant": [
            {
                "actor": {"reference": f"Practitioner/{slot.practitioner_id}"},
                "status": "needs-action",
            },
            {
                "actor": {"reference": f"PractitionerRole/{slot.practitioner_role_id}"},
                "status": "needs-action",
            },
        ],
    }
    if request_id is not None:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{request_id}"}]
    return resource


async def find_appointments(
    session: AsyncSession, caller: Caller, params: Sequence[tuple[str, str]]
) -> list[Resource]:
    """Free slots as proposed Appointments, earliest first: those fitting a ServiceRequest (as
    ``GET /api/consults/{id}/slots``), or of a specialty or practitioner."""
    values: dict[str, str] = {}
    for name, value in params:
        if name in ("_format", "_pretty"):
            continue
        if name not in FIND_PARAMS:
            raise BadRequest(
                f"$find: unknown parameter '{name}'; supported: {', '.join(FIND_PARAMS)}"
            )
        values[name] = value
    after = _moment("start", values["start"]) if "start" in values else None
    before = _moment("end", values["end"]) if "end" in values else None
    count = values.get("_count", "20")
    limit = max(1, min(100, int(count))) if count.isdigit() else 20
    request_id = (
        _id_of(values["service-request"], "ServiceRequest", "service-request")
        if "service-request" in values
        else None
    )
    practitioner = (
        _id_of(values["practitioner"], "Practitioner", "practitioner")
        if "practitioner" in values
        else None
    )
    specialty = values.get("specialty", "").rpartition("|")[2] or None
    if caller.principal.kind == "client":
        require_scope(caller.principal, "Slot", "r")
    if request_id is not None:
        slots = await slots_for_request(
            session, caller, request_id, starts_after=after, starts_before=before, limit=limit
        )
    elif caller.principal.kind == "client":
        if not (specialty or practitioner):
            raise InvalidInput.for_field(
                "specialty", "give a specialty, a practitioner or a request"
            )
        slots = await search_slots(
            session,
            specialty_id=(await specialty_by_code(session, specialty)).id if specialty else None,
            practitioner_id=practitioner,
            starts_after=after,
            starts_before=before,
            limit=limit,
        )
    else:
        slots = await find_slots(
            session,
            caller,
            specialty_code=specialty,
            practitioner_id=practitioner,
            starts_after=after,
            starts_before=before,
            limit=limit,
        )
    return [_proposal(slot, request_id) for slot in slots]


def _booking_of(appointment: Resource) -> tuple[uuid.UUID, uuid.UUID]:
    if appointment.get("resourceType") != "Appointment":
        raise BadRequest("Book an Appointment resource (as $find proposed it)")
    slots = [s.get("reference", "") for s in appointment.get("slot", [])]
    requests = [
        r.get("reference", "")
        for r in appointment.get("basedOn", [])
        if r.get("reference", "").startswith("ServiceRequest/")
    ]
    if len(slots) != 1:
        raise InvalidInput.for_field("Appointment.slot", "name exactly one Slot to book")
    if len(requests) != 1:
        raise InvalidInput.for_field(
            "Appointment.basedOn", "name the consult request (ServiceRequest) to book it for"
        )
    return (
        _id_of(requests[0], "ServiceRequest", "Appointment.basedOn"),
        _id_of(slots[0], "Slot", "Appointment.slot"),
    )


def appointment_to_book(body: Resource) -> Resource:
    """The Appointment inside a ``$book`` call: the body itself, or Parameters.appointment."""
    if body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter", []):
            if parameter.get("name") == "appointment" and "resource" in parameter:
                resource: Resource = parameter["resource"]
                return resource
        raise BadRequest("$book: the Parameters carry no 'appointment' resource")
    return body


async def book_appointment(
    session: AsyncSession, caller: Caller, appointment: Resource, settings: Settings
) -> StoredVersion:
    """Book the slot for the request; the stored Appointment (version 1) is the answer."""
    request_id, slot_id = _booking_of(appointment)
    booked = await book_slot(session, caller, request_id, slot_id, settings)
    await flush_versions(session)
    version = await store.read_current(session, "Appointment", str(booked.id))
    assert version is not None
    return version
