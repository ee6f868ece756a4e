"""Availability use cases: publish rules and exceptions, regenerate slots, search free slots."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import Role
from telehealth.auth.principal import Caller, Principal
from telehealth.availability import rules
from telehealth.availability.models import (
    AvailabilityException,
    AvailabilityRule,
    ExceptionKind,
    Slot,
    SlotStatus,
)
from telehealth.availability.schemas import (
    ExceptionCreate,
    RegenerationReport,
    RuleCreate,
    SpanRead,
)
from telehealth.directory.models import PractitionerRole
from telehealth.errors import InvalidInput, NotFound, PermissionDenied
from telehealth.settings import Settings
from telehealth.timeutil import local, utcnow


async def _service(
    session: AsyncSession, principal: Principal, role_id: uuid.UUID
) -> PractitionerRole:
    """The service whose availability is edited: the specialist's own, or, for a coordinator,
    one at their hospital."""
    role = await session.get(PractitionerRole, role_id)
    if role is None or not role.active:
        raise InvalidInput.for_field("practitioner_role_id", "no such active service")
    if role.specialty_id is None:
        raise InvalidInput.for_field("practitioner_role_id", "the role has no specialty")
    own = principal.role == Role.SPECIALIST and principal.practitioner_id == role.practitioner_id
    coordinating = (
        principal.role == Role.COORDINATOR and principal.organization_id == role.organization_id
    )
    if principal.kind != "user" or not (own or coordinating):
        raise PermissionDenied(
            "Only the specialist, or a coordinator of their hospital, manages this availability"
        )
    return role


def _weekly(rule: AvailabilityRule) -> rules.WeeklyRule:
    return rules.WeeklyRule(
        rule.weekday,
        rule.start_time,
        rule.end_time,
        rule.slot_minutes,
        rule.valid_from,
        rule.valid_until,
    )


async def _rules_of(session: AsyncSession, role_id: uuid.UUID) -> Sequence[AvailabilityRule]:
    rows = await session.exec(
        select(AvailabilityRule)
        .where(AvailabilityRule.practitioner_role_id == role_id)
        .order_by(col(AvailabilityRule.weekday), col(AvailabilityRule.start_time))
    )
    return rows.all()


async def add_rule(
    session: AsyncSession, caller: Caller, data: RuleCreate, settings: Settings
) -> tuple[AvailabilityRule, RegenerationReport]:
    role = await _service(session, caller.principal, data.practitioner_role_id)
    new = rules.WeeklyRule(
        data.weekday,
        data.start_time,
        data.end_time,
        data.slot_minutes,
        data.valid_from,
        data.valid_until,
    )
    rules.check_rule(new)
    rules.check_rule_clashes(new, [_weekly(r) for r in await _rules_of(session, role.id)])
    rule = AvailabilityRule(
        **data.model_dump(), timezone=settings.timezone, created_by=caller.principal.id
    )
    session.add(rule)
    await session.flush()
    return rule, await regenerate_slots(session, role.id, settings)


async def _remove(
    session: AsyncSession,
    caller: Caller,
    row: AvailabilityRule | AvailabilityException | None,
    settings: Settings,
) -> RegenerationReport:
    """Remove a rule or an exception of a service the caller manages, then regenerate its
    slots: free ones follow, booked or held ones stay and are reported as conflicts."""
    if row is None:
        raise NotFound("No such availability rule or exception")
    role = await _service(session, caller.principal, row.practitioner_role_id)
    await session.delete(row)
    await session.flush()
    return await regenerate_slots(session, role.id, settings)


async def remove_rule(
    session: AsyncSession, caller: Caller, rule_id: uuid.UUID, settings: Settings
) -> RegenerationReport:
    return await _remove(session, caller, await session.get(AvailabilityRule, rule_id), settings)


async def remove_exception(
    session: AsyncSession, caller: Caller, exception_id: uuid.UUID, settings: Settings
) -> RegenerationReport:
    """Take back leave or extra hours (e.g. added by mistake)."""
    row = await session.get(AvailabilityException, exception_id)
    return await _remove(session, caller, row, settings)


async def list_rules(
    session: AsyncSession, caller: Caller, role_id: uuid.UUID
) -> Sequence[AvailabilityRule]:
    await _service(session, caller.principal, role_id)
    return await _rules_of(session, role_id)


async def list_exceptions(
    session: AsyncSession, caller: Caller, role_id: uuid.UUID
) -> Sequence[AvailabilityException]:
    """A service's leave and extra hours still to come (same access as its weekly rules)."""
    await _service(session, caller.principal, role_id)
    rows = await session.exec(
        select(AvailabilityException)
        .where(
            AvailabilityException.practitioner_role_id == role_id,
            col(AvailabilityException.ends_at) > utcnow(),
        )
        .order_by(col(AvailabilityException.starts_at))
    )
    return rows.all()


async def add_exception(
    session: AsyncSession, caller: Caller, data: ExceptionCreate, settings: Settings
) -> tuple[AvailabilityException, RegenerationReport]:
    role = await _service(session, caller.principal, data.practitioner_role_id)
    window = rules.Window(data.starts_at, data.ends_at, data.slot_minutes)
    rules.check_window(window)
    if (data.kind == ExceptionKind.EXTRA) != (data.slot_minutes is not None):
        raise InvalidInput.for_field(
            "slot_minutes", "give a slot length for extra hours, and only for them"
        )
    exception = AvailabilityException(**data.model_dump(), created_by=caller.principal.id)
    session.add(exception)
    await session.flush()
    return exception, await regenerate_slots(session, role.id, settings)


async def regenerate_slots(
    session: AsyncSession, role_id: uuid.UUID, settings: Settings, now: datetime | None = None
) -> RegenerationReport:
    """Bring a service's future slots in line with its rules over the horizon: free slots are
    added and removed, booked or held ones never touched (reported if no longer wanted).
    Idempotent; the daily horizon extension calls it too."""
    role = await session.get(PractitionerRole, role_id)
    if role is None or role.specialty_id is None:
        raise NotFound("No such service")
    now = now or utcnow()
    first_day = local(now, settings.tz).date()
    last_day = first_day + timedelta(weeks=settings.slot_horizon_weeks)
    horizon_end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), settings.tz)
    exceptions = (
        await session.exec(
            select(AvailabilityException).where(
                AvailabilityException.practitioner_role_id == role_id,
                col(AvailabilityException.ends_at) > now,
            )
        )
    ).all()
    wanted = rules.generate_slots(
        [_weekly(r) for r in await _rules_of(session, role_id)] if role.active else [],
        [
            rules.Window(
                e.starts_at, e.ends_at, e.slot_minutes if e.kind == ExceptionKind.EXTRA else None
            )
            for e in exceptions
        ],
        first_day,
        last_day,
        settings.tz,
        now,
    )
    existing = (
        await session.exec(
            select(Slot).where(
                Slot.practitioner_role_id == role_id,
                col(Slot.starts_at) > now,
                col(Slot.starts_at) < horizon_end,
            )
        )
    ).all()
    free = {rules.Span(s.starts_at, s.ends_at): s for s in existing if s.status == SlotStatus.FREE}
    taken = [rules.Span(s.starts_at, s.ends_at) for s in existing if s.status != SlotStatus.FREE]
    plan = rules.plan_regeneration(wanted, free, taken)
    if plan.remove:
        await session.exec(
            delete(Slot).where(
                col(Slot.id).in_([free[span].id for span in plan.remove]),
                col(Slot.status) == SlotStatus.FREE,
            )
        )
    session.add_all(
        Slot(
            practitioner_role_id=role.id,
            practitioner_id=role.practitioner_id,
            organization_id=role.organization_id,
            specialty_id=role.specialty_id,
            starts_at=span.starts_at,
            ends_at=span.ends_at,
        )
        for span in plan.add
    )
    await session.flush()
    return RegenerationReport(
        practitioner_role_id=role_id,
        added=len(plan.add),
        removed=len(plan.remove),
        conflicts=[SpanRead(starts_at=c.starts_at, ends_at=c.ends_at) for c in plan.conflicts],
    )


def free_at(now: datetime) -> ColumnElement[bool]:
    """A slot that can be taken at ``now``: free, or held but the hold ran out (its timer may
    not have freed it yet)."""
    return or_(
        col(Slot.status) == SlotStatus.FREE,
        and_(col(Slot.status) == SlotStatus.HELD, col(Slot.hold_until) < now),
    )


HOLD_EXPIRE = "slot.hold_expire"
SLOT_TAKEN = "Khung giờ không còn trống / slot no longer available"
# What a slot's columns become when its hold ends (ran out, or replaced by another hold).
HOLD_ENDED: dict[str, Any] = {
    "status": SlotStatus.FREE,
    "hold_until": None,
    "held_by": None,
    "held_for_request_id": None,
}


async def release_expired_hold(session: AsyncSession, slot_id: uuid.UUID) -> bool:
    """Timer job for ``slot.hold_expire``: free the slot if its hold has run out."""
    result = await session.exec(
        update(Slot)
        .where(
            col(Slot.id) == slot_id,
            col(Slot.status) == SlotStatus.HELD,
            col(Slot.hold_until) <= utcnow(),
        )
        .values(**HOLD_ENDED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)
