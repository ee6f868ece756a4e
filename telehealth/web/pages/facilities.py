"""Administrators: the facilities hierarchy (province, district, commune) as a tree."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from telehealth.auth.access import check_directory_write
from telehealth.auth.audit import audited_unit_of_work
from telehealth.directory import service
from telehealth.directory.models import FacilityLevel, Organization
from telehealth.directory.schemas import OrganizationCreate, OrganizationUpdate
from telehealth.errors import TelehealthError
from telehealth.http.dependencies import CallerDep, DatabaseDep, SessionDep
from telehealth.web.forms import FormState, posted, refused, to_schema
from telehealth.web.render import page, page_language

CREATE_FIELDS = ("name", "level", "parent_id", "moh_code", "admin_unit_code", "address", "phone")
UPDATE_FIELDS = ("name", "level", "parent_id", "admin_unit_code", "address", "phone", "active")
ALL_FACILITIES = 200


def as_tree(rows: Sequence[Organization]) -> list[tuple[int, Organization]]:
    """Facilities in hierarchy order, each with its depth (a presentation of the rows)."""
    known = {row.id for row in rows}
    children: dict[uuid.UUID | None, list[Organization]] = {}
    for row in rows:
        parent = row.parent_id if row.parent_id in known else None
        children.setdefault(parent, []).append(row)
    ordered: list[tuple[int, Organization]] = []

    def walk(parent: uuid.UUID | None, depth: int) -> None:
        for row in children.get(parent, []):
            ordered.append((depth, row))
            walk(row.id, depth + 1)

    walk(None, 0)
    return ordered


class FacilityPages(Controller):
    path = "/admin/facilities"
    include_in_schema = False

    async def _form(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        form: FormState,
        facility: Organization | None,
        status: int = 200,
    ) -> Template:
        async with audited_unit_of_work(db, caller) as session:
            rows, _ = await service.search_organizations(session, caller, limit=ALL_FACILITIES)
        return page(
            request,
            "admin/facility_form.html",
            status_code=status,
            form=form,
            facility=facility,
            parents=[row for row in rows if facility is None or row.id != facility.id],
            levels=list(FacilityLevel),
        )

    @get("/")
    async def tree(
        self, request: Request[Any, Any, Any], session: SessionDep, caller: CallerDep
    ) -> Template:
        rows, total = await service.search_organizations(session, caller, limit=ALL_FACILITIES)
        return page(
            request,
            "admin/facilities.html",
            tree=as_tree(rows),
            total=total,
            saved=bool(request.query_params.get("saved")),
        )

    @get("/new")
    async def new_form(
        self, request: Request[Any, Any, Any], db: DatabaseDep, caller: CallerDep
    ) -> Template:
        check_directory_write(caller.principal, "Organization")
        values = {"parent_id": request.query_params.get("parent_id", "")}
        return await self._form(request, db, caller, FormState(values=values), None)

    @post("/new")
    async def create(
        self, request: Request[Any, Any, Any], db: DatabaseDep, caller: CallerDep
    ) -> Template | Redirect:
        language = page_language(request)
        data, form = to_schema(OrganizationCreate, await posted(request), CREATE_FIELDS, language)
        if data is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await service.create_organization(session, caller, data)
                return Redirect("/admin/facilities?saved=1", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
        return await self._form(request, db, caller, form, None, status=422)

    @get("/{org_id:uuid}/edit")
    async def edit_form(
        self,
        request: Request[Any, Any, Any],
        org_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template:
        check_directory_write(caller.principal, "Organization")
        async with audited_unit_of_work(db, caller) as session:
            facility = await service.get_organization(session, caller, org_id)
        values = {
            name: "" if getattr(facility, name) is None else str(getattr(facility, name))
            for name in (*CREATE_FIELDS, "active")
        }
        values["active"] = "true" if facility.active else "false"
        return await self._form(request, db, caller, FormState(values=values), facility)

    @post("/{org_id:uuid}/edit")
    async def update(
        self,
        request: Request[Any, Any, Any],
        org_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = await posted(request)
        data, form = to_schema(OrganizationUpdate, values, UPDATE_FIELDS, language)
        if data is not None:
            if not values.get("parent_id"):
                data.parent_id = None
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await service.update_organization(session, caller, org_id, data)
                return Redirect("/admin/facilities?saved=1", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
                if exc.status_code in (403, 404):
                    raise
        async with audited_unit_of_work(db, caller) as session:
            facility = await service.get_organization(session, caller, org_id)
        form.values.setdefault("moh_code", facility.moh_code)
        return await self._form(request, db, caller, form, facility, status=422)
