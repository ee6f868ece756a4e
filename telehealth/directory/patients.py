"""Patients: registered by their facility's doctors (or systems with scopes), found by name
without diacritics or by CCCD/BHYT number; every read and write is noted for the audit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import (
    check_patient_access,
    check_patient_registration,
    patient_visibility,
)
from telehealth.auth.principal import Caller
from telehealth.directory import rules
from telehealth.directory.models import Organization, Patient
from telehealth.directory.records import (
    add,
    equal_where_given,
    load,
    name_matches,
    one_page,
    save_changes,
)
from telehealth.directory.schemas import PatientCreate, PatientUpdate
from telehealth.errors import DuplicateEntry, InvalidInput
from telehealth.timeutil import local, utcnow

NO_SUCH_PATIENT = "No such patient, or not one you have access to"


async def _check_unique_identifiers(
    session: AsyncSession,
    national_id: str | None,
    insurance_number: str | None,
    exclude: uuid.UUID | None = None,
) -> None:
    for field, column, value in (
        ("national_id", Patient.national_id, national_id),
        ("insurance_number", Patient.insurance_number, insurance_number),
    ):
        if value is None:
            continue
        statement = select(Patient.id).where(column == value)
        if exclude is not None:
            statement = statement.where(Patient.id != exclude)
        if (await session.exec(statement)).first():
            # Deliberately says nothing about which facility holds the record.
            raise DuplicateEntry(
                f"A patient with this {field.replace('_', ' ')} is registered already"
            )


async def register_patient(session: AsyncSession, caller: Caller, data: PatientCreate) -> Patient:
    organization_id = data.organization_id or caller.principal.organization_id
    if organization_id is None:
        raise InvalidInput.for_field("organization_id", "say which facility the patient belongs to")
    caller.note("create", "Patient")
    check_patient_registration(caller.principal, organization_id)
    if await session.get(Organization, organization_id) is None:
        raise InvalidInput.for_field("organization_id", "no such organization")
    rules.check_birth_date(data.birth_date, local(utcnow()).date())
    fields = rules.clean_entries(data.model_dump(), name_field="full_name")
    if fields["national_id"]:
        fields["national_id"] = rules.clean_national_id(
            fields["national_id"], data.birth_date, data.gender
        )
    await _check_unique_identifiers(session, fields["national_id"], fields["insurance_number"])
    patient = await add(session, Patient(**fields | {"organization_id": organization_id}))
    caller.notes[-1].entity_id = str(patient.id)
    caller.notes[-1].patient_id = patient.id
    return patient


async def update_patient(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, data: PatientUpdate
) -> Patient:
    caller.note("update", "Patient", patient_id, patient_id=patient_id)
    patient = await load(session, Patient, patient_id, NO_SUCH_PATIENT)
    check_patient_access(caller.principal, patient.organization_id, "u")
    changes = data.model_dump(exclude_unset=True)
    birth_date = changes.get("birth_date") or patient.birth_date
    gender = changes.get("gender") or patient.gender
    if "birth_date" in changes:
        rules.check_birth_date(birth_date, local(utcnow()).date())
    changes = rules.clean_entries(changes, name_field="full_name")
    # The stored CCCD is checked again when the birth date or gender it encodes changes.
    national_id = changes.get("national_id", patient.national_id)
    if national_id:
        changes["national_id"] = rules.clean_national_id(national_id, birth_date, gender)
    await _check_unique_identifiers(
        session, changes.get("national_id"), changes.get("insurance_number"), exclude=patient.id
    )
    return save_changes(session, patient, changes)


async def search_patients(
    session: AsyncSession,
    caller: Caller,
    *,
    name: str | None = None,
    identifier: str | None = None,
    organization_id: uuid.UUID | None = None,
    birth_date: Any = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Patient], int]:
    """Patients the caller may see, matching every given criterion."""
    caller.note("search", "Patient")
    visibility = patient_visibility(caller.principal, "s")
    statement = select(Patient)
    if not visibility.everyone:
        statement = statement.where(col(Patient.organization_id).in_(visibility.organization_ids))
    if name:
        statement = statement.where(*name_matches(Patient.name_folded, name))
    if identifier:
        value = identifier.strip().replace(" ", "").upper()
        statement = statement.where(
            or_(col(Patient.national_id) == value, col(Patient.insurance_number) == value)
        )
    statement = statement.where(
        *equal_where_given(
            (Patient.organization_id, organization_id), (Patient.birth_date, birth_date)
        )
    )
    order = [col(Patient.name_folded), col(Patient.id)]
    rows, total = await one_page(session, statement, order, limit=limit, offset=offset)
    caller.notes[-1].detail = f"{len(rows)} of {total} shown"
    return rows, total
