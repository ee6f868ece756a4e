"""Administrators: system clients (the secret is shown once) and the audit log."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter
from litestar.response import Template

from telehealth.auth import service as accounts
from telehealth.auth.access import check_account_admin
from telehealth.auth.audit import AuditQuery, audited_unit_of_work, search_audit
from telehealth.auth.models import AuditOutcome
from telehealth.auth.schemas import ClientCreate
from telehealth.errors import TelehealthError
from telehealth.http.dependencies import CallerDep, DatabaseDep, SessionDep, SettingsDep
from telehealth.settings import Settings
from telehealth.web.forms import FormState, posted, refused, to_schema
from telehealth.web.i18n import translate
from telehealth.web.render import page, page_language

CLIENT_FIELDS = ("client_id", "name", "scopes", "organization_id")
AUDIT_PAGE = 50


class ClientPages(Controller):
    path = "/admin/clients"
    include_in_schema = False

    @get("/")
    async def new_form(self, request: Request[Any, Any, Any], caller: CallerDep) -> Template:
        check_account_admin(caller.principal)
        return page(request, "admin/clients.html", form=FormState(), created=None)

    @post("/")
    async def create(
        self, request: Request[Any, Any, Any], db: DatabaseDep, caller: CallerDep
    ) -> Template:
        language = page_language(request)
        data, form = to_schema(ClientCreate, await posted(request), CLIENT_FIELDS, language)
        if data is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    client, secret = await accounts.create_client(
                        session, caller, **data.model_dump()
                    )
                created = {"client_id": client.client_id, "scopes": client.scopes, "secret": secret}
                return page(request, "admin/clients.html", form=FormState(), created=created)
            except TelehealthError as exc:
                refused(form, exc, language)
        return page(request, "admin/clients.html", status_code=422, form=form, created=None)


def _local_day_start(value: str, settings: Settings) -> datetime | None:
    """A date typed in the filter, as the start of that day in local time."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return datetime.combine(day, time.min, tzinfo=settings.tz)


class AuditPages(Controller):
    path = "/admin/audit"
    include_in_schema = False

    @get("/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
        actor_id: Annotated[str, QueryParameter(max_length=64)] = "",
        patient_id: Annotated[str, QueryParameter(max_length=40)] = "",
        entity_type: Annotated[str, QueryParameter(max_length=40)] = "",
        action: Annotated[str, QueryParameter(max_length=32)] = "",
        outcome: Annotated[str, QueryParameter(max_length=8)] = "",
        since: Annotated[str, QueryParameter(max_length=10)] = "",
        until: Annotated[str, QueryParameter(max_length=10)] = "",
        offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    ) -> Template:
        values = {
            "actor_id": actor_id,
            "patient_id": patient_id,
            "entity_type": entity_type,
            "action": action,
            "outcome": outcome,
            "since": since,
            "until": until,
        }
        form = FormState(values=values)
        language = page_language(request)
        patient: uuid.UUID | None = None
        if patient_id:
            try:
                patient = uuid.UUID(patient_id)
            except ValueError:
                form.errors["patient_id"] = translate(language, "is not a record id")
        start = _local_day_start(since, settings) if since else None
        end = _local_day_start(until, settings) if until else None
        if since and start is None:
            form.errors["since"] = translate(language, "is not a valid date")
        if until and end is None:
            form.errors["until"] = translate(language, "is not a valid date")
        query = AuditQuery(
            actor_id=actor_id or None,
            patient_id=patient,
            entity_type=entity_type or None,
            action=action or None,
            outcome=AuditOutcome(outcome) if outcome in set(AuditOutcome) else None,
            since=start,
            until=end + timedelta(days=1) if end else None,
            limit=AUDIT_PAGE,
            offset=offset,
        )
        events = await search_audit(session, caller, query)
        return page(
            request,
            "admin/audit.html",
            form=form,
            events=events,
            outcomes=list(AuditOutcome),
            offset=offset,
            page_size=AUDIT_PAGE,
        )
