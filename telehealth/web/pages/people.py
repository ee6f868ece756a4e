"""Administrators: practitioners and their roles, and people's accounts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from telehealth.auth import service as accounts
from telehealth.auth import two_factor
from telehealth.auth.access import check_account_admin, check_directory_write
from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.models import Role
from telehealth.auth.schemas import AccountCreate
from telehealth.directory import service as directory
from telehealth.directory.models import Gender
from telehealth.directory.schemas import (
    PractitionerCreate,
    PractitionerRoleCreate,
    PractitionerUpdate,
)
from telehealth.errors import Conflict, InvalidInput, NotFound, TelehealthError
from telehealth.http.dependencies import CallerDep, DatabaseDep, SessionDep, SettingsDep
from telehealth.web.forms import FormState, clear_emptied, posted, refused, to_schema
from telehealth.web.i18n import translate
from telehealth.web.render import page, page_language

PRACTITIONER_FIELDS = ("full_name", "licence_number", "gender", "phone", "email")
ROLE_FIELDS = ("practitioner_id", "organization_id", "specialty_code")
ACCOUNT_FIELDS = (
    "username",
    "password",
    "display_name",
    "role",
    "organization_id",
    "practitioner_id",
    "language",
    "email",
)
ALL = 200


class PractitionerPages(Controller):
    path = "/admin/practitioners"
    include_in_schema = False

    @get("/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        caller: CallerDep,
        q: Annotated[str, QueryParameter(max_length=120)] = "",
    ) -> Template:
        form = FormState(values={"q": q})
        rows: list[Any] = []
        try:
            found, _ = await directory.search_practitioners(
                session, caller, name=q or None, limit=ALL
            )
            rows = list(found)
        except InvalidInput as exc:
            refused(form, exc, page_language(request))
            if "name" in form.errors:  # the API's 'name' is this form's 'q'
                form.errors["q"] = form.errors.pop("name")
                form.message = None
        return page(request, "admin/practitioners.html", form=form, rows=rows)

    @get("/new")
    async def new_form(self, request: Request[Any, Any, Any], caller: CallerDep) -> Template:
        check_directory_write(caller.principal, "Practitioner")
        return page(request, "admin/practitioner_form.html", form=FormState(), genders=list(Gender))

    @post("/new")
    async def create(
        self, request: Request[Any, Any, Any], db: DatabaseDep, caller: CallerDep
    ) -> Template | Redirect:
        language = page_language(request)
        data, form = to_schema(
            PractitionerCreate, await posted(request), PRACTITIONER_FIELDS, language
        )
        if data is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    created = await directory.create_practitioner(session, caller, data)
                return Redirect(f"/admin/practitioners/{created.id}", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
        return page(
            request,
            "admin/practitioner_form.html",
            status_code=422,
            form=form,
            genders=list(Gender),
        )

    @get("/{practitioner_id:uuid}/edit")
    async def edit_form(
        self,
        request: Request[Any, Any, Any],
        practitioner_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
    ) -> Template:
        check_directory_write(caller.principal, "Practitioner")
        found = await directory.get_practitioner(session, caller, practitioner_id)
        values = {
            name: "" if getattr(found, name) is None else str(getattr(found, name))
            for name in (*PRACTITIONER_FIELDS, "active")
        }
        values["active"] = "true" if found.active else "false"
        return page(
            request,
            "admin/practitioner_form.html",
            form=FormState(values=values),
            genders=list(Gender),
            practitioner=found,
        )

    @post("/{practitioner_id:uuid}/edit")
    async def update(
        self,
        request: Request[Any, Any, Any],
        practitioner_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = await posted(request)
        fields = ("full_name", "gender", "phone", "email", "active")
        data, form = to_schema(PractitionerUpdate, values, fields, language)
        if data is not None:
            clear_emptied(data, values, ("phone", "email"))
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await directory.update_practitioner(session, caller, practitioner_id, data)
                return Redirect(f"/admin/practitioners/{practitioner_id}", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
                if exc.status_code in (403, 404):
                    raise
        async with audited_unit_of_work(db, caller) as session:
            found = await directory.get_practitioner(session, caller, practitioner_id)
        return page(
            request,
            "admin/practitioner_form.html",
            status_code=422,
            form=form,
            genders=list(Gender),
            practitioner=found,
        )

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        practitioner_id: uuid.UUID,
        form: FormState,
        status: int = 200,
    ) -> Template:
        async with audited_unit_of_work(db, caller) as session:
            practitioner = await directory.get_practitioner(session, caller, practitioner_id)
            roles = await directory.practitioner_roles(
                session, caller, practitioner_id=practitioner_id
            )
            facilities, _ = await directory.search_organizations(session, caller, limit=ALL)
            specialties = await directory.list_specialties(session)
        return page(
            request,
            "admin/practitioner.html",
            status_code=status,
            practitioner=practitioner,
            roles=roles,
            facilities=facilities,
            facility_names={f.id: f.name for f in facilities},
            specialties=specialties,
            specialty_by_id={s.id: s for s in specialties},
            form=form,
        )

    @get("/{practitioner_id:uuid}")
    async def detail(
        self,
        request: Request[Any, Any, Any],
        practitioner_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template:
        return await self._detail(request, db, caller, practitioner_id, FormState())

    @post("/{practitioner_id:uuid}/roles")
    async def add_role(
        self,
        request: Request[Any, Any, Any],
        practitioner_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = {**await posted(request), "practitioner_id": str(practitioner_id)}
        data, form = to_schema(PractitionerRoleCreate, values, ROLE_FIELDS, language)
        if data is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await directory.add_practitioner_role(session, caller, data)
                return Redirect(f"/admin/practitioners/{practitioner_id}", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
        return await self._detail(request, db, caller, practitioner_id, form, status=422)


class AccountPages(Controller):
    path = "/admin/accounts"
    include_in_schema = False

    async def _list(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        form: FormState,
        status: int = 200,
        notice: str | None = None,
        refusal: str | None = None,
    ) -> Template:
        async with audited_unit_of_work(db, caller) as session:
            rows = await accounts.list_accounts(session, caller, limit=ALL, offset=0)
            with_code = await two_factor.enrolled_among(session, [row.id for row in rows])
            facilities, _ = await directory.search_organizations(session, caller, limit=ALL)
        return page(
            request,
            "admin/accounts.html",
            status_code=status,
            rows=rows,
            with_code=with_code,
            facilities=facilities,
            facility_names={f.id: f.name for f in facilities},
            roles=list(Role),
            form=form,
            notice=notice,
            refusal=refusal,
        )

    @get("/")
    async def listing(
        self, request: Request[Any, Any, Any], db: DatabaseDep, caller: CallerDep
    ) -> Template:
        return await self._list(
            request, db, caller, FormState(), notice=request.query_params.get("done")
        )

    @post("/")
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        language = page_language(request)
        data, form = to_schema(AccountCreate, await posted(request), ACCOUNT_FIELDS, language)
        form.values.pop("password", None)
        if data is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await accounts.create_account(
                        session, settings, caller, accounts.NewAccount(**data.model_dump())
                    )
                return Redirect("/admin/accounts?done=created", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
        return await self._list(request, db, caller, form, status=422)

    @post("/{account_id:uuid}/{action:str}")
    async def act(
        self,
        request: Request[Any, Any, Any],
        account_id: FromPath[uuid.UUID],
        action: FromPath[str],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        check_account_admin(caller.principal)
        values = await posted(request)
        actions: dict[str, dict[str, Any]] = {
            "deactivate": {"active": False},
            "activate": {"active": True},
            "unlock": {"unlock": True},
            "two-factor-reset": {"reset_two_factor": True},
            "password": {"new_password": values.get("new_password", "")[:200]},
        }
        changes = actions.get(action)
        if changes is None:
            raise NotFound("No such action")
        if changes.get("new_password") == "":
            problem = InvalidInput("Give a new password before resetting it.")
            state = refused(FormState(), problem, page_language(request))
            return await self._list(request, db, caller, state, status=422)
        try:
            async with audited_unit_of_work(db, caller) as session:
                await accounts.update_account(session, settings, caller, account_id, **changes)
        except (Conflict, InvalidInput) as exc:
            # Deactivating one's own account, the last administrator, a weak new password:
            # said on the accounts page itself, in the person's language.
            language = page_language(request)
            refusal = translate(language, exc.detail)
            if exc.problems:
                field, message = exc.problems[0].field, exc.problems[0].message
                refusal = translate(language, message)
                if field == "new_password":
                    refusal = f"{translate(language, 'New password')}: {refusal}"
                refusal = refusal[:1].upper() + refusal[1:]  # a sentence of its own here
            return await self._list(
                request, db, caller, FormState(), status=exc.status_code, refusal=refusal
            )
        return Redirect(f"/admin/accounts?done={action}", status_code=303)
