"""The consults a person takes part in or oversees over a span of days (the desk's "today")."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import require_role
from telehealth.auth.models import Role
from telehealth.auth.principal import Caller
from telehealth.consults.models import Appointment, AppointmentStatus, ConsultRequest
from telehealth.directory.models import PractitionerRole


async def agenda(
    session: AsyncSession,
    caller: Caller,
    starts_after: datetime,
    starts_before: datetime,
    statuses: tuple[AppointmentStatus, ...] = (
        AppointmentStatus.BOOKED,
        AppointmentStatus.IN_PROGRESS,
        AppointmentStatus.COMPLETED,
    ),
) -> list[tuple[Appointment, ConsultRequest]]:
    """Appointments in a time range the caller takes part in or oversees: a specialist's own,
    a coordinator's hospital's, a requester's facility's."""
    principal = caller.principal
    require_role(principal, Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR)
    caller.note("search", "Appointment", detail=f"{starts_after:%Y-%m-%d} agenda")
    statement = (
        select(Appointment, ConsultRequest)
        .join(ConsultRequest, col(ConsultRequest.id) == col(Appointment.request_id))
        .where(
            col(Appointment.starts_at) >= starts_after,
            col(Appointment.starts_at) < starts_before,
            col(Appointment.status).in_(statuses),
        )
    )
    if principal.role == Role.SPECIALIST:
        statement = statement.where(Appointment.practitioner_id == principal.practitioner_id)
    elif principal.role == Role.COORDINATOR:
        statement = statement.join(
            PractitionerRole, col(PractitionerRole.id) == col(Appointment.practitioner_role_id)
        ).where(PractitionerRole.organization_id == principal.organization_id)
    else:
        statement = statement.where(
            ConsultRequest.requesting_organization_id == principal.organization_id
        )
    rows = (await session.exec(statement.order_by(col(Appointment.starts_at)).limit(200))).all()
    return [(a, r) for a, r in rows]
