"""Queues: who sees which requests, most pressing first (priority, then waiting time)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import require_role
from telehealth.auth.models import Role
from telehealth.auth.principal import Caller
from telehealth.consults.models import ConsultRequest, ConsultStatus, Priority
from telehealth.consults.service import caller_services

ACTIVE = (
    ConsultStatus.DRAFT,
    ConsultStatus.REQUESTED,
    ConsultStatus.ACCEPTED,
    ConsultStatus.SCHEDULED,
    ConsultStatus.IN_PROGRESS,
    ConsultStatus.DECLINED,
)


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
    statement = select(ConsultRequest)
    # System clients read requests through /fhir with scopes; administrators see no queue.
    require_role(principal, Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR)
    if principal.role == Role.REQUESTER:
        statement = statement.where(
            ConsultRequest.requesting_organization_id == principal.organization_id
        )
    elif principal.role == Role.SPECIALIST:
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
        statement = statement.where(
            or_(col(ConsultRequest.assigned_practitioner_id) == principal.practitioner_id, *queued)
        )
    else:
        statement = statement.where(
            or_(
                col(ConsultRequest.target_organization_id).is_(None),
                col(ConsultRequest.target_organization_id) == principal.organization_id,
            )
        )
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
    found = rows.all()
    caller.notes[-1].detail = f"{len(found)} requests"
    return found
