"""A patient's record as a caller may read it: their facility's doctors always, and (read only)
the specialists and coordinators a consult of the patient is queued or assigned to. Here, not
in the directory, because the second way goes through the consults."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import patient_visibility, readable_through_consult
from telehealth.auth.models import Role
from telehealth.auth.principal import Caller, Principal
from telehealth.consults.models import ConsultRequest
from telehealth.consults.parties import caller_services, parties
from telehealth.directory.models import Patient
from telehealth.directory.patients import NO_SUCH_PATIENT
from telehealth.directory.records import load
from telehealth.errors import NotFound


async def get_patient(session: AsyncSession, caller: Caller, patient_id: uuid.UUID) -> Patient:
    """A patient of the caller's facility, or (read only) of a consult visible to the caller."""
    caller.note("read", "Patient", patient_id, patient_id=patient_id)
    return await readable_patient(session, caller, patient_id)


async def readable_patient(session: AsyncSession, caller: Caller, patient_id: uuid.UUID) -> Patient:
    """The patient if the caller may read their record: their facility's doctors, or (read
    only) those a consult of the patient is queued or assigned to. The caller's last audit
    note says which consult opened it."""
    patient = await load(session, Patient, patient_id, NO_SUCH_PATIENT)
    if patient_visibility(caller.principal, "r").covers(patient.organization_id):
        return patient
    through = await consult_opening_patient(session, caller.principal, patient.id)
    if through is None:
        raise NotFound(NO_SUCH_PATIENT)
    caller.notes[-1].detail = f"through consult {through}"
    return patient


async def consult_opening_patient(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID
) -> uuid.UUID | None:
    """A consult of the patient through which the caller may read the patient's record
    (``access.readable_through_consult``), or None."""
    if principal.kind != "user" or principal.role not in (Role.SPECIALIST, Role.COORDINATOR):
        return None
    services = await caller_services(session, principal)
    requests = await session.exec(
        select(ConsultRequest)
        .where(col(ConsultRequest.patient_id) == patient_id)
        .order_by(col(ConsultRequest.created_at).desc())
    )
    for request in requests.all():
        if readable_through_consult(principal, parties(request), services):
            return request.id
    return None
