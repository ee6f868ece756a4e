"""Who has a consult request on their open pages, and so is told when it changes."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import Role, UserAccount
from telehealth.consults.models import ConsultRequest
from telehealth.directory.models import PractitionerRole


async def watchers(session: AsyncSession, request_id: uuid.UUID) -> list[uuid.UUID]:
    """Accounts whose queue or board shows the request: its requester, the specialists of its
    specialty at its target (any provincial hospital when untargeted) or assigned to it, and
    the coordinators of those hospitals. One statement: this runs after every change to a
    request, booking included."""
    request = ConsultRequest
    roles = select(PractitionerRole).where(
        col(PractitionerRole.specialty_id) == col(request.specialty_id),
        col(PractitionerRole.active),
        or_(
            col(request.target_organization_id).is_(None),
            col(PractitionerRole.organization_id) == col(request.target_organization_id),
        ),
    )
    account = UserAccount
    statement = select(account.id).where(
        col(request.id) == request_id,
        or_(
            col(account.id) == col(request.requester_id),
            and_(
                col(account.active),
                or_(
                    col(account.practitioner_id) == col(request.assigned_practitioner_id),
                    col(account.practitioner_id).in_(
                        roles.with_only_columns(col(PractitionerRole.practitioner_id))
                    ),
                    and_(
                        col(account.role) == Role.COORDINATOR,
                        or_(
                            col(account.organization_id) == col(request.target_organization_id),
                            col(account.organization_id).in_(
                                roles.with_only_columns(col(PractitionerRole.organization_id))
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
    found = (await session.exec(statement.select_from(account).join(request, true()))).all()
    return sorted(set(found))
