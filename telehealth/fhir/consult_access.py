"""Who may read the FHIR view of consults: the same rules as /api (``access.consult_visible``).

Every clinical resource belongs to one consult request: ServiceRequest, Task and the vital-signs
Observation share its id; an Appointment and an Encounter point at it with ``basedOn``, a
DocumentReference with ``context.related``, a Condition through its diagnosis row (the
Encounter has its Appointment's id). People read a resource when they may see its request, and their searches
are limited to the requests they may see; system clients go by their SMART scopes. Schedules and
slots are availability, open to everyone signed in, like ``/api/slots``.
"""

from __future__ import annotations

import json
import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_consult_read, require_role
from telehealth.auth.models import Role
from telehealth.auth.principal import Caller
from telehealth.consults.models import ConsultConclusion, ConsultDiagnosis, ConsultRequest
from telehealth.consults.parties import caller_services, parties
from telehealth.consults.queues import visible_request_ids
from telehealth.errors import NotFound
from telehealth.fhir.models import FhirResource
from telehealth.fhir.search import SearchQuery, restrict_references
from telehealth.fhir.store import StoredVersion
from telehealth.rtc.models import Room

SAME_ID_TYPES = frozenset({"ServiceRequest", "Task", "Observation"})
CONSULT_TYPES = SAME_ID_TYPES | {"Appointment", "DocumentReference", "Encounter", "Condition"}
AVAILABILITY_TYPES = frozenset({"Schedule", "Slot"})
_LINK = {"Appointment": "based-on", "Encounter": "based-on", "DocumentReference": "related"}


def check_person_may_use(caller: Caller) -> None:
    """Consult resources are for the people who work consults, not administrators."""
    require_role(caller.principal, Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR)


async def request_of(session: AsyncSession, version: StoredVersion) -> uuid.UUID | None:
    if version.resource_type in SAME_ID_TYPES:
        return uuid.UUID(version.resource_id)
    if version.resource_type == "Condition":
        diagnosis = await session.get(ConsultDiagnosis, uuid.UUID(version.resource_id))
        return diagnosis.request_id if diagnosis else None
    resource = json.loads(version.text)
    links = (
        resource.get("basedOn", [])
        if version.resource_type in ("Appointment", "Encounter")
        else (resource.get("context") or {}).get("related", [])
    )
    for link in links:
        reference = link.get("reference", "")
        if reference.startswith("ServiceRequest/"):
            return uuid.UUID(reference.removeprefix("ServiceRequest/"))
    return None


async def check_consult_resource(
    session: AsyncSession, caller: Caller, version: StoredVersion
) -> None:
    """Audit the read of a consult resource and refuse it (404) if its request is hidden."""
    request_id = await request_of(session, version)
    request = await session.get(ConsultRequest, request_id) if request_id else None
    caller.note(
        "read",
        version.resource_type,
        version.resource_id,
        patient_id=request.patient_id if request else None,
    )
    if caller.principal.kind == "client":
        return
    missing = NotFound(
        f"No {version.resource_type} with id {version.resource_id}, or not one you have access to"
    )
    if request is None:
        raise missing
    services = await caller_services(session, caller.principal)
    try:
        check_consult_read(caller.principal, parties(request), services)
    except NotFound as exc:
        raise missing from exc


async def restrict_consult_search(
    session: AsyncSession, caller: Caller, query: SearchQuery
) -> None:
    """Audit the search, and for people keep only what belongs to requests they may see."""
    caller.note("search", query.resource_type)
    if caller.principal.kind == "client":
        return
    ids = await visible_request_ids(session, caller.principal)
    if query.resource_type in SAME_ID_TYPES:
        if not ids:
            query.empty = True
            return
        query.criteria.append(col(FhirResource.resource_id).in_(sorted(str(i) for i in ids)))
    elif query.resource_type == "Condition":
        # A Condition's encounter is the consult's room or, without one, its conclusion.
        rows = await session.exec(
            select(ConsultConclusion.id, Room.id)
            .outerjoin(Room, col(Room.appointment_id) == col(ConsultConclusion.appointment_id))
            .where(col(ConsultConclusion.request_id).in_(ids))
        )
        encounters = {room_id or conclusion_id for conclusion_id, room_id in rows.all()}
        restrict_references(query, "encounter", {f"Encounter/{i}" for i in encounters})
    else:
        restrict_references(query, _LINK[query.resource_type], {f"ServiceRequest/{i}" for i in ids})
