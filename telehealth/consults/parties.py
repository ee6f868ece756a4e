"""The facts of a consult that decide who may see it, and the services of the one asking:
what ``auth.access`` needs to decide, read without importing the consult use cases (the video
rooms, which those use cases close, decide with them too)."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import ConsultParties, Service
from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.consults.models import ConsultRequest
from telehealth.directory.models import PractitionerRole


def parties(request: ConsultRequest) -> ConsultParties:
    return ConsultParties(
        requesting_organization_id=request.requesting_organization_id,
        target_organization_id=request.target_organization_id,
        specialty_id=request.specialty_id,
        assigned_practitioner_id=request.assigned_practitioner_id,
    )


async def caller_services(session: AsyncSession, principal: Principal) -> frozenset[Service]:
    """The consult services (active practitioner roles) of a specialist; empty for others."""
    if principal.role != Role.SPECIALIST or principal.practitioner_id is None:
        return frozenset()
    rows = await session.exec(
        select(PractitionerRole.organization_id, PractitionerRole.specialty_id).where(
            PractitionerRole.practitioner_id == principal.practitioner_id,
            col(PractitionerRole.active).is_(True),
        )
    )
    return frozenset(Service(org, specialty) for org, specialty in rows.all())
