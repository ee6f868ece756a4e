"""Facilities: the hierarchy (central, provincial, district, commune), created, moved and
searched by administrators and read by everyone."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_directory_read, check_directory_write
from telehealth.auth.principal import Caller
from telehealth.directory import rules
from telehealth.directory.models import FacilityLevel, Organization
from telehealth.directory.records import (
    add,
    equal_where_given,
    load,
    name_matches,
    one_page,
    save_changes,
)
from telehealth.directory.schemas import OrganizationCreate, OrganizationUpdate
from telehealth.errors import DuplicateEntry, InvalidInput

NO_SUCH_ORGANIZATION = "No such organization"


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
    return await add(
        session, Organization(**rules.clean_entries(data.model_dump(), name_field="name"))
    )


async def get_organization(
    session: AsyncSession, caller: Caller, org_id: uuid.UUID
) -> Organization:
    check_directory_read(caller.principal, "Organization")
    return await load(session, Organization, org_id, NO_SUCH_ORGANIZATION)


async def update_organization(
    session: AsyncSession, caller: Caller, org_id: uuid.UUID, data: OrganizationUpdate
) -> Organization:
    """Rename, re-level or move a facility; the hierarchy stays ordered above and below it."""
    check_directory_write(caller.principal, "Organization")
    org = await load(session, Organization, org_id, NO_SUCH_ORGANIZATION)
    changes = data.model_dump(exclude_unset=True)
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
    return save_changes(session, org, rules.clean_entries(changes, name_field="name"))


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
    statement = statement.where(
        *equal_where_given(
            (Organization.level, level),
            (Organization.parent_id, parent_id),
            (Organization.moh_code, moh_code),
        )
    )
    order = [col(Organization.name)]
    return await one_page(session, statement, order, limit=limit, offset=offset)


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
