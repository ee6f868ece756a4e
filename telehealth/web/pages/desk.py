"""The working desks: queue and triage board, the day's consults, weekly availability,
appointment actions (join, complete, reschedule, cancel, no-show), notifications."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.models import Role
from telehealth.availability import service as availability
from telehealth.availability.models import ExceptionKind
from telehealth.availability.schemas import ExceptionCreate, RuleCreate
from telehealth.consults import agenda, booking, open_slots, queues, rooms
from telehealth.consults.models import AppointmentStatus, ConsultStatus
from telehealth.consults.rules import escalation_due
from telehealth.directory import service as directory
from telehealth.errors import InvalidInput, TelehealthError
from telehealth.http.dependencies import (
    CallerDep,
    DatabaseDep,
    SessionDep,
    SettingsDep,
)
from telehealth.notifications.service import list_notifications
from telehealth.timeutil import utcnow
from telehealth.web.forms import FormState, posted, refused, to_schema
from telehealth.web.render import page, page_language

RULE_FIELDS = ("practitioner_role_id", "weekday", "start_time", "end_time", "slot_minutes")
EXCEPTION_FIELDS = (
    "practitioner_role_id",
    "kind",
    "starts_at",
    "ends_at",
    "slot_minutes",
    "reason",
)


def _local_day(settings: Any, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(settings.timezone))
    return start, start + timedelta(days=1)


class DeskPages(Controller):
    include_in_schema = False

    @get("/queue")
    async def queue(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template:
        """A specialist's queue, a coordinator's triage board, a requester's requests: most
        pressing first; on the board, unassigned and overdue requests come first."""
        rows = list(await queues.queue(session, caller, limit=200))
        now = utcnow()
        overdue = {
            r.id
            for r in rows
            if r.status == ConsultStatus.REQUESTED
            and r.submitted_at
            and escalation_due(r.priority, r.submitted_at, settings.escalation_deadlines_s) <= now
        }
        if caller.principal.role == Role.COORDINATOR:
            rows.sort(key=lambda r: (r.assigned_practitioner_id is not None, r.id not in overdue))
        start, end = _local_day(settings, now.astimezone(ZoneInfo(settings.timezone)).date())
        today = await agenda.agenda(session, caller, start, end)
        no_shows: list[Any] = []
        if caller.principal.role == Role.COORDINATOR:
            no_shows = await agenda.agenda(
                session, caller, start - timedelta(days=30), end, (AppointmentStatus.NO_SHOW,)
            )
        facilities = {
            org: (await directory.get_organization(session, caller, org)).name
            for org in {r.requesting_organization_id for r in rows}
        }
        return page(
            request,
            "consults/queue.html",
            rows=rows,
            facilities=facilities,
            overdue=overdue,
            today=today,
            no_shows=no_shows,
            now=now,
            Role=Role,
        )

    @get("/availability")
    async def availability_page(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template:
        return await _availability(request, session, caller, settings, FormState(), FormState())

    @post("/availability/{what:str}")
    async def change_availability(
        self,
        request: Request[Any, Any, Any],
        what: FromPath[str],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        """rules (add a weekly rule), exceptions (leave or extra hours), remove (a rule),
        remove-exception (leave or extra hours added by mistake)."""
        language = page_language(request)
        values = await posted(request)
        forms = {"rules": FormState(), "exceptions": FormState()}
        try:
            async with audited_unit_of_work(db, caller) as session:
                if what == "remove":
                    await availability.remove_rule(
                        session, caller, uuid.UUID(values.get("rule_id", "")), settings
                    )
                elif what == "remove-exception":
                    await availability.remove_exception(
                        session, caller, uuid.UUID(values.get("exception_id", "")), settings
                    )
                elif what == "rules":
                    rule, forms["rules"] = to_schema(RuleCreate, values, RULE_FIELDS, language)
                    if rule is None:
                        raise InvalidInput("Please correct the fields marked below.")
                    await availability.add_rule(session, caller, rule, settings)
                elif what == "exceptions":
                    tz = f"{datetime.now(ZoneInfo(settings.timezone)):%z}"
                    shaped = {
                        **values,
                        **{
                            k: f"{values[k]}{tz[:3]}:{tz[3:]}"
                            for k in ("starts_at", "ends_at")
                            if values.get(k)
                        },
                    }
                    exception, forms["exceptions"] = to_schema(
                        ExceptionCreate, shaped, EXCEPTION_FIELDS, language
                    )
                    forms["exceptions"].values = values
                    if exception is None:
                        raise InvalidInput("Please correct the fields marked below.")
                    await availability.add_exception(session, caller, exception, settings)
                else:
                    raise InvalidInput(f"'{what}' is not an availability change")
            return Redirect("/availability?saved=1", status_code=303)
        except ValueError:
            forms["rules"].message = "choose one of the options"
        except TelehealthError as exc:
            if exc.status_code in (403, 404):
                raise
            target = forms["exceptions" if what == "exceptions" else "rules"]
            target.values = values
            refused(target, exc, language)
        async with db.unit_of_work() as session:
            return await _availability(
                request, session, caller, settings, forms["rules"], forms["exceptions"], 422
            )

    @get("/appointments/{appointment_id:uuid}/join")
    async def join(
        self,
        appointment_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Redirect:
        """To the consult-room page with a fresh join token (in the fragment, out of logs)."""
        async with audited_unit_of_work(db, caller) as session:
            grant = await rooms.join_consult(session, caller, settings, appointment_id)
        return Redirect(f"/room/{grant.room.id}#token={grant.token}", status_code=303)

    @post("/appointments/{appointment_id:uuid}/{action:str}")
    async def appointment_action(
        self,
        request: Request[Any, Any, Any],
        appointment_id: FromPath[uuid.UUID],
        action: FromPath[str],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Redirect:
        """complete, cancel, no-show (with a reason), reschedule (to another slot)."""
        values = await posted(request)
        reason = values.get("reason") or ""
        async with audited_unit_of_work(db, caller) as session:
            if action == "complete":
                done = await booking.complete_consult(
                    session, caller, appointment_id, reason or None
                )
            elif action in ("cancel", "no-show"):
                if not reason:
                    raise InvalidInput.for_field("reason", "is required")
                act = booking.cancel_appointment if action == "cancel" else booking.mark_no_show
                done = await act(session, caller, appointment_id, reason)
            elif action == "reschedule":
                try:
                    slot_id = uuid.UUID(values.get("slot_id", ""))
                except ValueError:
                    raise InvalidInput.for_field("slot_id", "choose one of the options") from None
                done = await booking.reschedule(
                    session, caller, appointment_id, slot_id, reason or None, settings
                )
            else:
                raise InvalidInput(f"'{action}' is not an appointment action")
        return Redirect(f"/consults/{done.request_id}?saved=1", status_code=303)

    @get("/notifications")
    async def notifications(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        caller: CallerDep,
        offset: Annotated[int, QueryParameter(ge=0, le=100_000)] = 0,
    ) -> Template:
        rows = await list_notifications(session, caller, unread_only=False, limit=50, offset=offset)
        return page(request, "consults/notifications.html", rows=rows, offset=offset)


async def _availability(
    request: Request[Any, Any, Any],
    session: Any,
    caller: Any,
    settings: Any,
    rule_form: FormState,
    exception_form: FormState,
    status: int = 200,
) -> Template:
    """The specialist's services, each with its week (rules by weekday), exceptions to come
    and free slots of the next seven days."""
    principal = caller.principal
    services = []
    if principal.practitioner_id:
        roles = await directory.practitioner_roles(
            session, caller, practitioner_id=principal.practitioner_id
        )
        for role in roles:
            if not role.active or role.specialty_id is None:
                continue
            rules = await availability.list_rules(session, caller, role.id)
            organization = await directory.get_organization(session, caller, role.organization_id)
            week = [[r for r in rules if r.weekday == d] for d in range(7)]
            slots = await open_slots.search_slots(
                session,
                practitioner_role_id=role.id,
                starts_before=utcnow() + timedelta(days=7),
                limit=200,
            )
            services.append(
                {
                    "role": role,
                    "organization": organization,
                    "week": week,
                    "exceptions": await availability.list_exceptions(session, caller, role.id),
                    "free": len(slots),
                }
            )
    return page(
        request,
        "consults/availability.html",
        status_code=status,
        services=services,
        rule_form=rule_form,
        exception_form=exception_form,
        kinds=list(ExceptionKind),
        saved=bool(request.query_params.get("saved")),
    )
