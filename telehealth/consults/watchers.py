"""Who has a consult request on their open pages, and so is told when it changes."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, or_, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from telehealth.auth.models import Role, UserAccount
from telehealth.consults.models import ConsultRequest
from telehealth.db import Prepared
from telehealth.directory.models import PractitionerRole


def _statement() -> sa.Select[Any]:
    request, account = ConsultRequest, UserAccount
    roles = sa.select(col(PractitionerRole.id)).where(
        col(PractitionerRole.specialty_id) == col(request.specialty_id),
        col(PractitionerRole.active),
        or_(
            col(request.target_organization_id).is_(None),
            col(PractitionerRole.organization_id) == col(request.target_organization_id),
        ),
    )
    return (
        sa.select(col(account.id))
        .select_from(account)
        .join(request, true())
        .where(
            col(request.id) == sa.bindparam("request_id", type_=sa.Uuid()),
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
                            col(account.role) == Role.COORDINATOR.value,
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
    )


# Compiled once: this runs after every change to a request, booking included.
_WATCHERS = Prepared(_statement())


async def watchers(connection: AsyncConnection, request_id: uuid.UUID) -> list[uuid.UUID]:
    """Accounts whose queue or board shows the request: its requester, the specialists of its
    specialty at its target (any provincial hospital when untargeted) or assigned to it, and
    the coordinators of those hospitals. One statement, on a ``Database.read_only()``
    connection."""
    rows = await _WATCHERS.rows(connection, request_id=request_id)
    return sorted({uuid.UUID(str(account)) for (account,) in rows})
