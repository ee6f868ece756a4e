"""Queues: who sees which requests, most pressing first (priority, then waiting time)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import require_role
from telehealth.auth.models import Role
from telehealth.auth.principal import Caller, Principal
from telehealth.consults.models import ConsultRequest, ConsultStatus, Priority
from telehealth.consults.parties import caller_services

ACTIVE = (
    ConsultStatus.DRAFT,
    ConsultStatus.REQUESTED,
    ConsultStatus.ACCEPTED,
    ConsultStatus.SCHEDULED,
    ConsultStatus.IN_PROGRESS,
    ConsultStatus.DECLINED,
)


async def _visible_to(session: AsyncSession, principal: Principal, statement: Any) -> Any:
    """``statement`` limited to the requests ``principal`` may see (``access.consult_visible``
    as SQL)."""
    if principal.role == Role.REQUESTER:
        return statement.where(
            ConsultRequest.requesting_organization_id == principal.organization_id
        )
    if principal.role == Role.SPECIALIST:
        services = await caller_services(session, principal)
        queued = [
            and_(
                col(ConsultRequest.assigned_practitioner_id).is_(None),
                col(ConsultRequest.specialty_id) == service.specialty_id,
                or_(
                    col(ConsultRequest.target_organization_id).is_(None),
                    col(ConsultRequest.target_organization_id) == service.organization_id,
                ),
            )
            for service in services
        ]
        return statement.where(
            or_(col(ConsultRequest.assigned_practitioner_id) == principal.practitioner_id, *queued)
        )
    if principal.role == Role.COORDINATOR:
        return statement.where(
            or_(
                col(ConsultRequest.target_organization_id).is_(None),
                col(ConsultRequest.target_organization_id) == principal.organization_id,
            )
        )
    return statement.where(sa.false())


async def visible_request_ids(session: AsyncSession, principal: Principal) -> list[uuid.UUID]:
    """Every request (any state) a person may see: what FHIR searches of consult resources are
    limited to."""
    statement = await _visible_to(session, principal, select(ConsultRequest.id))
    if principal.role != Role.REQUESTER:
        statement = statement.where(ConsultRequest.status != ConsultStatus.DRAFT)
    return list((await session.exec(statement)).all())


async def queue(
    session: AsyncSession,
    caller: Caller,
    *,
    status: ConsultStatus | None = None,
    priority: Priority | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[ConsultRequest]:
    """The caller's queue, most pressing first: priority, then longest waiting.

    Requester: their facility's requests. Specialist: unassigned requests for their services
    and those assigned to them. Coordinator: their hospital's (and untargeted) requests."""
    principal = caller.principal
    caller.note("search", "ConsultRequest")
    # System clients read requests through /fhir with scopes; administrators see no queue.
    require_role(principal, Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR)
    statement = await _visible_to(session, principal, select(ConsultRequest))
    if status is not None:
        statement = statement.where(ConsultRequest.status == status)
    else:
        statement = statement.where(col(ConsultRequest.status).in_(ACTIVE))
    if principal.role != Role.REQUESTER:
        statement = statement.where(ConsultRequest.status != ConsultStatus.DRAFT)
    if priority is not None:
        statement = statement.where(ConsultRequest.priority == priority)
    rows = await session.exec(
        statement.order_by(
            col(ConsultRequest.priority_rank),
            col(ConsultRequest.submitted_at).nulls_last(),
            col(ConsultRequest.id),
        )
        .offset(offset)
        .limit(min(limit, 200))
    )
    found: Sequence[ConsultRequest] = rows.all()
    caller.notes[-1].detail = f"{len(found)} requests"
    return found
