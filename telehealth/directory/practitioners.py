"""Practitioners, their roles (a practitioner at a facility, in a specialty), and the
specialties consults are asked in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_directory_read, check_directory_write
from telehealth.auth.principal import Caller
from telehealth.directory import rules
from telehealth.directory.models import Organization, Practitioner, PractitionerRole, Specialty
from telehealth.directory.records import (
    MAX_PAGE,
    add,
    equal_where_given,
    load,
    name_matches,
    one_page,
    save_changes,
)
from telehealth.directory.schemas import (
    PractitionerCreate,
    PractitionerRoleCreate,
    PractitionerUpdate,
)
from telehealth.errors import DuplicateEntry, InvalidInput

NO_SUCH_PRACTITIONER = "No such practitioner"


async def list_specialties(session: AsyncSession) -> Sequence[Specialty]:
    return (await session.exec(select(Specialty).order_by(col(Specialty.name_vi)))).all()


async def specialty_by_code(session: AsyncSession, code: str) -> Specialty:
    specialty = (await session.exec(select(Specialty).where(Specialty.code == code))).first()
    if specialty is None:
        raise InvalidInput.for_field("specialty_code", f"unknown specialty code {code}")
    return specialty


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
    return await add(
        session, Practitioner(**rules.clean_entries(data.model_dump(), name_field="full_name"))
    )


async def get_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID
) -> Practitioner:
    check_directory_read(caller.principal, "Practitioner")
    return await load(session, Practitioner, practitioner_id, NO_SUCH_PRACTITIONER)


async def update_practitioner(
    session: AsyncSession, caller: Caller, practitioner_id: uuid.UUID, data: PractitionerUpdate
) -> Practitioner:
    check_directory_write(caller.principal, "Practitioner")
    practitioner = await load(session, Practitioner, practitioner_id, NO_SUCH_PRACTITIONER)
    changes = rules.clean_entries(data.model_dump(exclude_unset=True), name_field="full_name")
    return save_changes(session, practitioner, changes)


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
    statement = statement.where(*equal_where_given((Practitioner.licence_number, licence_number)))
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
    order = [col(Practitioner.name_folded)]
    return await one_page(session, statement, order, limit=limit, offset=offset)


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
    return await add(session, role)


async def practitioner_roles(
    session: AsyncSession,
    caller: Caller,
    *,
    practitioner_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> Sequence[PractitionerRole]:
    check_directory_read(caller.principal, "PractitionerRole")
    statement = select(PractitionerRole).where(
        *equal_where_given(
            (PractitionerRole.practitioner_id, practitioner_id),
            (PractitionerRole.organization_id, organization_id),
        )
    )
    return (await session.exec(statement.limit(MAX_PAGE))).all()
