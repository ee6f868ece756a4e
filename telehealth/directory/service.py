"""Directory use cases: load, decide with ``rules`` and ``auth.access``, save."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from telehealth.auth.access import (
    check_directory_read,
    check_directory_write,
    check_patient_access,
    check_patient_registration,
    patient_visibility,
)
from telehealth.auth.principal import Caller
from telehealth.directory import rules
from telehealth.directory.identifiers import clean_name, fold_name
from telehealth.directory.models import (
    FacilityLevel,
    Organization,
    Patient,
    Practitioner,
    PractitionerRole,
    Specialty,
)
from telehealth.directory.schemas import (
    OrganizationCreate,
    OrganizationUpdate,
    PatientCreate,
    PatientUpdate,
    PractitionerCreate,
    PractitionerRoleCreate,
    PractitionerUpdate,
)
from telehealth.errors import DuplicateEntry, InvalidInput, NotFound
from telehealth.timeutil import local, utcnow

MAX_PAGE = 200


async def _count(session: AsyncSession, statement: SelectOfScalar[Any]) -> int:
    total = await session.exec(select(func.count()).select_from(statement.subquery()))
    return int(total.one())


def _blanks_to_none(changes: dict[str, Any], *fields: str) -> dict[str, Any]:
    """An update that sets an optional identifier to "" clears it (no blank duplicates)."""
    for field in fields:
        if field in changes and not (changes[field] or "").strip():
            changes[field] = None
    return changes


# Organizations ------------------------------------------------------------------------------


async def _parent(session: AsyncSession, parent_id: uuid.UUID | None) -> Organization | None:
    if parent_id is None:
        return None
    parent = await session.get(Organization, parent_id)
    if parent is None:
        raise InvalidInput.for_field("parent_id", "no such organization")
    return parent


async def create_organization(
    session: AsyncSession, caller: Caller, data: OrganizationCreate
) -> Organization:
    check_directory_write(caller.principal, "Organization")
    parent = await _parent(session, data.parent_id)
    if parent is not None:
        rules.check_parent_level(data.level, parent.level)
    if (
        await session.exec(select(Organization.id).where(Organization.moh_code == data.moh_code))
    ).first():
        raise DuplicateEntry(f"A facility with Ministry code {data.moh_code} exists already")
    org = Organization(
        name=clean_name(data.name),
        name_folded=fold_name(data.name),
        level=data.level,
        parent_id=data.parent_id,
        moh_code=data.moh_code,
        admin_unit_code=rules.clean_admin_unit(data.admin_unit_code)
        if data.admin_unit_code
        else None,
        address=data.address,
        phone=rules.clean_phone(data.phone) if data.phone else None,
    )
    session.add(org)
    await session.flush()
    return org


async def get_organization(
    session: AsyncSession, caller: Caller, org_id: uuid.UUID
) -> Organization:
    check_directory_read(caller.principal, "Organization")
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound("No such organization")
    return org


async def update_organization(
    session: AsyncSession, caller: Caller, org_id: uuid.UUID, data: OrganizationUpdate
) -> Organization:
    check_directory_write(caller.principal, "Organization")
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound("No such organization")
    changes = _blanks_to_none(data.model_dump(exclude_unset=True), "admin_unit_code", "phone")
    level = changes.get("level", org.level)
    parent_id = changes.get("parent_id", org.parent_id)
    if parent_id == org.id:
        raise InvalidInput.for_field("parent_id", "a facility cannot be its own parent")
    parent = await _parent(session, parent_id)
    if parent is not None:
        rules.check_parent_level(level, parent.level)
    children = await session.exec(
        select(Organization.level).where(Organization.parent_id == org.id)
    )
    rules.check_child_levels(level, {FacilityLevel(child) for child in children.all()})
    if changes.get("admin_unit_code"):
        changes["admin_unit_code"] = rules.clean_admin_unit(changes["admin_unit_code"])
    if changes.get("phone"):
        changes["phone"] = rules.clean_phone(changes["phone"])
    if "name" in changes:
        changes["name_folded"] = fold_name(changes["name"])
        changes["name"] = clean_name(changes["name"])
    for name, value in changes.items():
        setattr(org, name, value)
    org.updated_at = utcnow()
    session.add(org)
    return org


async def search_organizations(
    session: AsyncSession,
    caller: Caller,
    *,
    name: str | None = None,
    level: FacilityLevel | None = None,
    parent_id: uuid.UUID | None = None,
    moh_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Organization], int]:
    check_directory_read(caller.principal, "Organization")
    statement = select(Organization)
    if name:
        statement = statement.where(*name_matches(Organization.name_folded, name))
    if level:
        statement = statement.where(Organization.level == level)
    if parent_id:
        statement = statement.where(Organization.parent_id == parent_id)
    if moh_code:
        statement = statement.where(Organization.moh_code == moh_code)
    total = await _count(session, statement)
    rows = await session.exec(
        statement.order_by(col(Organization.name)).offset(offset).limit(min(limit, MAX_PAGE))
    )
    return rows.all(), total


def name_matches(column: Any, text: str) -> list[Any]:
    """Every word of ``text`` appears in the folded name: 'nguyen an' finds 'Nguyễn Văn An'."""
    words = fold_name(text).split()
    if any(not word.isprintable() for word in words):
        raise InvalidInput.for_field("name", "contains control characters")
    if not words:
        raise InvalidInput.for_field("name", "give at least one letter or digit to search for")
    escaped = (word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for word in words)
    return [col(column).like(f"%{word}%", escape="\\") for word in escaped]


async def descendants(session: AsyncSession, org_id: uuid.UUID) -> set[uuid.UUID]:
    """The facility and every facility below it, at any depth."""
    found = {org_id}
    frontier = {org_id}
    while frontier:
        rows = await session.exec(
            select(Organization.id).where(col(Organization.parent_id).in_(frontier))
        )
        frontier = set(rows.all()) - found
        found |= frontier
    return found


async def list_specialties(session: AsyncSession) -> Sequence[Specialty]:
    return (await session.exec(select(Specialty).order_by(col(Specialty.name_vi)))).all()


async def specialty_by_code(session: AsyncSession, code: str) -> Specialty:
    specialty = (await session.exec(select(Specialty).where(Specialty.code == code))).first()
    if specialty is None:
        raise InvalidInput.for_field("specialty_code", f"unknown specialty code {code}")
    return specialty


# Practitioners -------------------------------------------------------------------------------


async def create_practitioner(
    session: AsyncSession, caller: Caller, data: PractitionerCreate
) -> Practitioner:
    check_directory_write(caller.principal, "Practitioner")
    if (
        data.licence_number
        and (
            await session.exec(
                select(Practitioner.id).where(Practitioner.licence_number == data.licence_number)
            )
        ).first()
    ):
        raise DuplicateEntry(f"A practitioner with licence {data.licence_number} exists already")
    practitioner = Practitioner(
        full_name=clean_name(data.full_name),
        name_folded=fold_name(data.full_name),
        licence_number=data.licence_number,
        gender=data.gender,
        phone=rules.clean_phone(data.phone) if data.phone else None,
        email=data.email,
    )
    session.add(practitioner)
    await session.flush()
    return practitioner


async def get_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> Practitioner:
    check_directory_read(caller.principal, "Practitioner")
    practitioner = await session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFound("No such practitioner")
    return practitioner


async def update_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, data: PractitionerUpdate
) -> Practitioner:
    check_directory_write(caller.principal, "Practitioner")
    practitioner = await session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFound("No such practitioner")
    changes = _blanks_to_none(data.model_dump(exclude_unset=True), "phone")
    if changes.get("phone"):
        changes["phone"] = rules.clean_phone(changes["phone"])
    if "full_name" in changes:
        changes["name_folded"] = fold_name(changes["full_name"])
        changes["full_name"] = clean_name(changes["full_name"])
    for name, value in changes.items():
        setattr(practitioner, name, value)
    practitioner.updated_at = utcnow()
    session.add(practitioner)
    return practitioner


async def search_practitioners(
    session: AsyncSession,
    caller: Caller,
    *,
    name: str | None = None,
    licence_number: str | None = None,
    organization_id: uuid.UUID | None = None,
    specialty_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Practitioner], int]:
    check_directory_read(caller.principal, "Practitioner")
    statement = select(Practitioner)
    if name:
        statement = statement.where(*name_matches(Practitioner.name_folded, name))
    if licence_number:
        statement = statement.where(Practitioner.licence_number == licence_number)
    if organization_id or specialty_code:
        roles = select(PractitionerRole.practitioner_id).where(
            col(PractitionerRole.active).is_(True)
        )
        if organization_id:
            roles = roles.where(PractitionerRole.organization_id == organization_id)
        if specialty_code:
            specialty = await specialty_by_code(session, specialty_code)
            roles = roles.where(PractitionerRole.specialty_id == specialty.id)
        statement = statement.where(col(Practitioner.id).in_(roles))
    total = await _count(session, statement)
    rows = await session.exec(
        statement.order_by(col(Practitioner.name_folded)).offset(offset).limit(min(limit, MAX_PAGE))
    )
    return rows.all(), total


async def add_practitioner_role(
    session: AsyncSession, caller: Caller, data: PractitionerRoleCreate
) -> PractitionerRole:
    check_directory_write(caller.principal, "PractitionerRole")
    if await session.get(Practitioner, data.practitioner_id) is None:
        raise InvalidInput.for_field("practitioner_id", "no such practitioner")
    if await session.get(Organization, data.organization_id) is None:
        raise InvalidInput.for_field("organization_id", "no such organization")
    specialty = (
        await specialty_by_code(session, data.specialty_code) if data.specialty_code else None
    )
    existing = await session.exec(
        select(PractitionerRole.id).where(
            PractitionerRole.practitioner_id == data.practitioner_id,
            PractitionerRole.organization_id == data.organization_id,
            PractitionerRole.specialty_id == (specialty.id if specialty else None),
        )
    )
    if existing.first():
        raise DuplicateEntry("The practitioner already has this role at this facility")
    role = PractitionerRole(
        practitioner_id=data.practitioner_id,
        organization_id=data.organization_id,
        specialty_id=specialty.id if specialty else None,
    )
    session.add(role)
    await session.flush()
    return role


async def practitioner_roles(
    session: AsyncSession,
    caller: Caller,
    *,
    practitioner_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> Sequence[PractitionerRole]:
    check_directory_read(caller.principal, "PractitionerRole")
    statement = select(PractitionerRole)
    if practitioner_id:
        statement = statement.where(PractitionerRole.practitioner_id == practitioner_id)
    if organization_id:
        statement = statement.where(PractitionerRole.organization_id == organization_id)
    return (await session.exec(statement.limit(MAX_PAGE))).all()


# Patients ------------------------------------------------------------------------------------


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
    national_id = (
        rules.clean_national_id(data.national_id, data.birth_date, data.gender)
        if data.national_id
        else None
    )
    insurance = (
        rules.clean_insurance_number(data.insurance_number) if data.insurance_number else None
    )
    await _check_unique_identifiers(session, national_id, insurance)
    patient = Patient(
        full_name=clean_name(data.full_name),
        name_folded=fold_name(data.full_name),
        gender=data.gender,
        birth_date=data.birth_date,
        national_id=national_id,
        insurance_number=insurance,
        phone=rules.clean_phone(data.phone) if data.phone else None,
        address=data.address,
        admin_unit_code=rules.clean_admin_unit(data.admin_unit_code)
        if data.admin_unit_code
        else None,
        organization_id=organization_id,
    )
    session.add(patient)
    await session.flush()
    caller.notes[-1].entity_id = str(patient.id)
    caller.notes[-1].patient_id = patient.id
    return patient


async def get_patient(session: AsyncSession, caller: Caller, patient_id: uuid.UUID) -> Patient:
    """A patient of the caller's facility, or (read only) of a consult visible to the caller."""
    caller.note("read", "Patient", patient_id, patient_id=patient_id)
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("No such patient, or not one you have access to")
    if patient_visibility(caller.principal, "r").covers(patient.organization_id):
        return patient
    # Imported here: the consults area builds on the directory (a module-level import cycles).
    from telehealth.consults.service import consult_opening_patient

    through = await consult_opening_patient(session, caller.principal, patient.id)
    if through is None:
        raise NotFound("No such patient, or not one you have access to")
    caller.notes[-1].detail = f"through consult {through}"
    return patient


async def update_patient(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, data: PatientUpdate
) -> Patient:
    caller.note("update", "Patient", patient_id, patient_id=patient_id)
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("No such patient, or not one you have access to")
    check_patient_access(caller.principal, patient.organization_id, "u")
    changes = _blanks_to_none(
        data.model_dump(exclude_unset=True),
        "national_id",
        "insurance_number",
        "phone",
        "admin_unit_code",
    )
    birth_date = changes.get("birth_date") or patient.birth_date
    gender = changes.get("gender") or patient.gender
    if "birth_date" in changes:
        rules.check_birth_date(birth_date, local(utcnow()).date())
    national_id = changes.get("national_id", patient.national_id)
    if national_id:
        changes["national_id"] = rules.clean_national_id(national_id, birth_date, gender)
    if changes.get("insurance_number"):
        changes["insurance_number"] = rules.clean_insurance_number(changes["insurance_number"])
    if changes.get("phone"):
        changes["phone"] = rules.clean_phone(changes["phone"])
    if changes.get("admin_unit_code"):
        changes["admin_unit_code"] = rules.clean_admin_unit(changes["admin_unit_code"])
    if "full_name" in changes:
        changes["name_folded"] = fold_name(changes["full_name"])
        changes["full_name"] = clean_name(changes["full_name"])
    await _check_unique_identifiers(
        session, changes.get("national_id"), changes.get("insurance_number"), exclude=patient.id
    )
    for name, value in changes.items():
        setattr(patient, name, value)
    patient.updated_at = utcnow()
    session.add(patient)
    return patient


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
    if organization_id:
        statement = statement.where(Patient.organization_id == organization_id)
    if birth_date:
        statement = statement.where(Patient.birth_date == birth_date)
    total = await _count(session, statement)
    rows = (
        await session.exec(
            statement.order_by(col(Patient.name_folded), col(Patient.id))
            .offset(offset)
            .limit(min(limit, MAX_PAGE))
        )
    ).all()
    caller.notes[-1].detail = f"{len(rows)} of {total} shown"
    return rows, total
