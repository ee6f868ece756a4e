"""/api routes of availability: weekly rules, exceptions, slot regeneration and search."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from telehealth.availability import service
from telehealth.availability.schemas import (
    ExceptionCreate,
    ExceptionPublished,
    ExceptionRead,
    HoldCreate,
    RegenerationReport,
    RuleCreate,
    RulePublished,
    RuleRead,
    SlotRead,
)
from telehealth.consults import holds, open_slots
from telehealth.http.dependencies import CallerDep, SessionDep, SettingsDep

Moment = Annotated[
    datetime | None, QueryParameter(description="ISO 8601 with offset, e.g. 2026-12-01T08:00+07:00")
]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]


class AvailabilityController(Controller):
    path = "/api/availability"
    tags = ["availability"]

    @post("/rules")
    async def add_rule(
        self,
        data: JSONBody[RuleCreate],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> RulePublished:
        """Publish a weekly rule for a service; future slots are regenerated at once."""
        rule, report = await service.add_rule(session, caller, data, settings)
        return RulePublished(rule=RuleRead.model_validate(rule), slots=report)

    @get("/rules")
    async def list_rules(
        self, practitioner_role_id: FromQuery[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> list[RuleRead]:
        rows = await service.list_rules(session, caller, practitioner_role_id)
        return [RuleRead.model_validate(r) for r in rows]

    @delete("/rules/{rule_id:uuid}", status_code=200)
    async def remove_rule(
        self,
        rule_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> RegenerationReport:
        """Remove a rule: its free slots go, booked ones stay and are reported as conflicts."""
        return await service.remove_rule(session, caller, rule_id, settings)

    @post("/exceptions")
    async def add_exception(
        self,
        data: JSONBody[ExceptionCreate],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ExceptionPublished:
        """Leave, holidays (unavailable) or one-off extra hours (extra, with a slot length)."""
        exception, report = await service.add_exception(session, caller, data, settings)
        return ExceptionPublished(exception=ExceptionRead.model_validate(exception), slots=report)

    @get("/exceptions")
    async def list_exceptions(
        self, practitioner_role_id: FromQuery[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> list[ExceptionRead]:
        """Leave and extra hours still to come, earliest first."""
        rows = await service.list_exceptions(session, caller, practitioner_role_id)
        return [ExceptionRead.model_validate(r) for r in rows]

    @delete("/exceptions/{exception_id:uuid}", status_code=200)
    async def remove_exception(
        self,
        exception_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> RegenerationReport:
        """Take back leave or extra hours: slots are regenerated (free ones added or removed,
        booked ones kept and reported as conflicts)."""
        return await service.remove_exception(session, caller, exception_id, settings)


class SlotController(Controller):
    path = "/api/slots"
    tags = ["availability"]

    @get("/")
    async def search(
        self,
        session: SessionDep,
        caller: CallerDep,
        specialty_code: Annotated[str | None, QueryParameter(max_length=32)] = None,
        organization_id: FromQuery[uuid.UUID | None] = None,
        practitioner_id: FromQuery[uuid.UUID | None] = None,
        practitioner_role_id: FromQuery[uuid.UUID | None] = None,
        starts_after: Moment = None,
        starts_before: Moment = None,
        limit: Limit = 20,
    ) -> list[SlotRead]:
        """Free slots, earliest first."""
        rows = await open_slots.find_slots(
            session,
            caller,
            specialty_code=specialty_code,
            organization_id=organization_id,
            practitioner_id=practitioner_id,
            practitioner_role_id=practitioner_role_id,
            starts_after=starts_after,
            starts_before=starts_before,
            limit=limit,
        )
        return [SlotRead.model_validate(s) for s in rows]

    @post("/{slot_id:uuid}/hold", status_code=200)
    async def hold(
        self,
        slot_id: FromPath[uuid.UUID],
        data: JSONBody[HoldCreate],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> SlotRead:
        """Keep a slot a few minutes for a consult request you may book, while you confirm
        the booking. A request holds one slot: holding another ends its previous hold."""
        held = await holds.hold_slot(session, caller, slot_id, data.request_id, settings)
        return SlotRead.model_validate(held)
