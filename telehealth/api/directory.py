"""/api routes of the directory: organizations, specialties, practitioners, patients."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Annotated, Any, TypeVar

from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from pydantic import BaseModel

from telehealth.api.idempotency import IdempotentDep
from telehealth.consults import patient_access
from telehealth.directory import service
from telehealth.directory.models import FacilityLevel
from telehealth.directory.schemas import (
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    Page,
    PatientCreate,
    PatientRead,
    PatientUpdate,
    PractitionerCreate,
    PractitionerRead,
    PractitionerRoleCreate,
    PractitionerRoleRead,
    PractitionerUpdate,
    SpecialtyRead,
)
from telehealth.http.dependencies import CallerDep, SessionDep
from telehealth.http.guards import directory_writers

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000, description="items to skip")]
SearchText = Annotated[
    str | None,
    QueryParameter(max_length=120, description="words of the name; diacritics optional"),
]
Code = Annotated[str | None, QueryParameter(max_length=16)]

ReadSchema = TypeVar("ReadSchema", bound=BaseModel)

# The query parameters of each search, declared once: litestar reads them from the fields (in
# this order, for the OpenAPI description) and the service takes them as keywords.


@dataclass(frozen=True)
class OrganizationSearch:
    name: SearchText = None
    level: FromQuery[FacilityLevel | None] = None
    parent_id: FromQuery[uuid.UUID | None] = None
    moh_code: Code = None
    limit: Limit = 50
    offset: Offset = 0


@dataclass(frozen=True)
class PractitionerSearch:
    name: SearchText = None
    licence_number: Annotated[str | None, QueryParameter(max_length=32)] = None
    organization_id: FromQuery[uuid.UUID | None] = None
    specialty_code: Annotated[
        str | None, QueryParameter(name="specialty", max_length=32, description="specialty code")
    ] = None
    limit: Limit = 50
    offset: Offset = 0


@dataclass(frozen=True)
class PatientSearch:
    name: SearchText = None
    identifier: Annotated[
        str | None, QueryParameter(max_length=20, description="CCCD or BHYT number")
    ] = None
    organization_id: FromQuery[uuid.UUID | None] = None
    birth_date: FromQuery[date | None] = None
    limit: Limit = 50
    offset: Offset = 0


def search_criteria(search: type[Any]) -> dict[str, Provide]:
    """The ``criteria`` a search handler receives, built from the request's query."""
    return {"criteria": Provide(search, sync_to_thread=False)}


def page_of(
    schema: type[ReadSchema], found: tuple[Sequence[Any], int], limit: int, offset: int
) -> Page[ReadSchema]:
    """One page of search results, as ``schema``, with the total of all matches."""
    rows, total = found
    items = [schema.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


class OrganizationController(Controller):
    path = "/api/organizations"
    tags = ["directory"]

    @post("/", guards=[directory_writers("Organization")])
    async def create(
        self, data: JSONBody[OrganizationCreate], session: SessionDep, caller: CallerDep
    ) -> OrganizationRead:
        return OrganizationRead.model_validate(
            await service.create_organization(session, caller, data)
        )

    @get("/", dependencies=search_criteria(OrganizationSearch))
    async def search(
        self,
        session: SessionDep,
        caller: CallerDep,
        criteria: NamedDependency[OrganizationSearch],
    ) -> Page[OrganizationRead]:
        found = await service.search_organizations(session, caller, **asdict(criteria))
        return page_of(OrganizationRead, found, criteria.limit, criteria.offset)

    @get("/{org_id:uuid}")
    async def read(
        self, org_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> OrganizationRead:
        return OrganizationRead.model_validate(
            await service.get_organization(session, caller, org_id)
        )

    @patch("/{org_id:uuid}", guards=[directory_writers("Organization")])
    async def update(
        self,
        org_id: FromPath[uuid.UUID],
        data: JSONBody[OrganizationUpdate],
        session: SessionDep,
        caller: CallerDep,
    ) -> OrganizationRead:
        return OrganizationRead.model_validate(
            await service.update_organization(session, caller, org_id, data)
        )


class SpecialtyController(Controller):
    path = "/api/specialties"
    tags = ["directory"]

    @get("/")
    async def list_all(self, session: SessionDep) -> list[SpecialtyRead]:
        return [SpecialtyRead.model_validate(s) for s in await service.list_specialties(session)]


class PractitionerController(Controller):
    path = "/api/practitioners"
    tags = ["directory"]

    @post("/", guards=[directory_writers("Practitioner")])
    async def create(
        self, data: JSONBody[PractitionerCreate], session: SessionDep, caller: CallerDep
    ) -> PractitionerRead:
        return PractitionerRead.model_validate(
            await service.create_practitioner(session, caller, data)
        )

    @get("/", dependencies=search_criteria(PractitionerSearch))
    async def search(
        self,
        session: SessionDep,
        caller: CallerDep,
        criteria: NamedDependency[PractitionerSearch],
    ) -> Page[PractitionerRead]:
        found = await service.search_practitioners(session, caller, **asdict(criteria))
        return page_of(PractitionerRead, found, criteria.limit, criteria.offset)

    @get("/{practitioner_id:uuid}")
    async def read(
        self, practitioner_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> PractitionerRead:
        return PractitionerRead.model_validate(
            await service.get_practitioner(session, caller, practitioner_id)
        )

    @patch("/{practitioner_id:uuid}", guards=[directory_writers("Practitioner")])
    async def update(
        self,
        practitioner_id: FromPath[uuid.UUID],
        data: JSONBody[PractitionerUpdate],
        session: SessionDep,
        caller: CallerDep,
    ) -> PractitionerRead:
        updated = await service.update_practitioner(session, caller, practitioner_id, data)
        return PractitionerRead.model_validate(updated)


class PractitionerRoleController(Controller):
    path = "/api/practitioner-roles"
    tags = ["directory"]

    @post("/", guards=[directory_writers("PractitionerRole")])
    async def create(
        self, data: JSONBody[PractitionerRoleCreate], session: SessionDep, caller: CallerDep
    ) -> PractitionerRoleRead:
        return PractitionerRoleRead.model_validate(
            await service.add_practitioner_role(session, caller, data)
        )

    @get("/")
    async def search(
        self,
        session: SessionDep,
        caller: CallerDep,
        practitioner_id: FromQuery[uuid.UUID | None] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
    ) -> list[PractitionerRoleRead]:
        rows = await service.practitioner_roles(
            session, caller, practitioner_id=practitioner_id, organization_id=organization_id
        )
        return [PractitionerRoleRead.model_validate(r) for r in rows]


class PatientController(Controller):
    path = "/api/patients"
    tags = ["patients"]

    @post("/")
    async def register(
        self,
        data: JSONBody[PatientCreate],
        session: SessionDep,
        caller: CallerDep,
        idempotent: IdempotentDep,
    ) -> Response[PatientRead]:
        async def create() -> PatientRead:
            return PatientRead.model_validate(await service.register_patient(session, caller, data))

        return await idempotent.answer(data, create)

    @get("/", dependencies=search_criteria(PatientSearch))
    async def search(
        self,
        session: SessionDep,
        caller: CallerDep,
        criteria: NamedDependency[PatientSearch],
    ) -> Page[PatientRead]:
        found = await service.search_patients(session, caller, **asdict(criteria))
        return page_of(PatientRead, found, criteria.limit, criteria.offset)

    @get("/{patient_id:uuid}")
    async def read(
        self, patient_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> PatientRead:
        return PatientRead.model_validate(
            await patient_access.get_patient(session, caller, patient_id)
        )

    @patch("/{patient_id:uuid}")
    async def update(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[PatientUpdate],
        session: SessionDep,
        caller: CallerDep,
    ) -> PatientRead:
        return PatientRead.model_validate(
            await service.update_patient(session, caller, patient_id, data)
        )
