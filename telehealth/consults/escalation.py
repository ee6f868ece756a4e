"""Escalation of a request nobody accepted in time (the ``request.escalate`` timer).

Each firing takes one step, recorded in ``consult_escalation`` (unique per request, round and
level, so a step cannot commit twice) and as an ``escalate`` transition in the request's
history: first to the next specialist of the service (active services of the specialty at
the target hospital, or at any provincial hospital if untargeted, in the order of their
hospital and service ids, each practitioner once), then to the coordinator on duty at that
hospital, then the request expires. After each step the next timer is written with the
priority's deadline. A step is taken only while the request is still ``requested`` and the
timer's level is the next one of the current round (``submitted_at``).

"On duty": an active coordinator account of the hospital with a live session (a refresh token
neither expired nor revoked, i.e. signed in within the session lifetime); if none is signed
in, any active coordinator of the hospital. Ties go to the first username.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import RefreshToken, Role, UserAccount
from telehealth.consults import rules
from telehealth.consults.models import ConsultEscalation, ConsultRequest, ConsultStatus
from telehealth.consults.service import ESCALATE, expire_request, practitioner_accounts, transition
from telehealth.directory.models import FacilityLevel, Organization, PractitionerRole
from telehealth.models import new_id
from telehealth.notifications.service import notify
from telehealth.settings import Settings
from telehealth.timers.handlers import TimerCall
from telehealth.timers.service import schedule
from telehealth.timeutil import utcnow

EXPIRED_REASON = "Không ai tiếp nhận sau khi chuyển tiếp / nobody accepted after escalation"


async def _services(session: AsyncSession, request: ConsultRequest) -> list[PractitionerRole]:
    """The specialty's active services at the target hospital (or any provincial one), one per
    practitioner, in a fixed order."""
    statement = (
        select(PractitionerRole)
        .join(Organization, col(Organization.id) == col(PractitionerRole.organization_id))
        .where(
            col(PractitionerRole.specialty_id) == request.specialty_id,
            col(PractitionerRole.active).is_(True),
        )
        .order_by(col(PractitionerRole.organization_id), col(PractitionerRole.id))
    )
    if request.target_organization_id is not None:
        statement = statement.where(
            col(PractitionerRole.organization_id) == request.target_organization_id
        )
    else:
        statement = statement.where(col(Organization.level) == FacilityLevel.PROVINCIAL)
    seen: set[uuid.UUID] = set()
    services = []
    for role in (await session.exec(statement)).all():
        if role.practitioner_id not in seen:
            seen.add(role.practitioner_id)
            services.append(role)
    return services


async def coordinator_on_duty(
    session: AsyncSession, organization_id: uuid.UUID | None
) -> UserAccount | None:
    """The hospital's coordinator on duty (see the module's docstring); ``None``: any
    provincial hospital's."""
    statement = select(UserAccount).where(
        col(UserAccount.role) == Role.COORDINATOR, col(UserAccount.active).is_(True)
    )
    if organization_id is not None:
        statement = statement.where(col(UserAccount.organization_id) == organization_id)
    else:
        statement = statement.join(
            Organization, col(Organization.id) == col(UserAccount.organization_id)
        ).where(col(Organization.level) == FacilityLevel.PROVINCIAL)
    people = list((await session.exec(statement.order_by(col(UserAccount.username)))).all())
    if not people:
        return None
    now = utcnow()
    signed_in = set(
        (
            await session.exec(
                select(RefreshToken.user_id).where(
                    col(RefreshToken.user_id).in_([p.id for p in people]),
                    col(RefreshToken.revoked_at).is_(None),
                    col(RefreshToken.expires_at) > now,
                )
            )
        ).all()
    )
    return next((p for p in people if p.id in signed_in), people[0])


async def escalate_request(session: AsyncSession, call: TimerCall, settings: Settings) -> None:
    """request.escalate: take the next step if the request is still unaccepted and this timer's
    level is the next step of its current round; otherwise nothing."""
    request = await session.get(ConsultRequest, call.subject_id)
    if request is None or request.status != ConsultStatus.REQUESTED:
        return
    level = int(call.payload.get("level", 1))
    round_at = request.submitted_at or request.created_at
    steps = (
        await session.exec(
            select(ConsultEscalation).where(
                col(ConsultEscalation.request_id) == request.id,
                col(ConsultEscalation.round_at) == round_at,
            )
        )
    ).all()
    if max((s.level for s in steps), default=0) != level - 1:
        return  # this step was taken already (or the timer belongs to an earlier round)
    services = await _services(session, request)
    step = rules.next_escalation(
        [role.id for role in services],
        frozenset(s.practitioner_role_id for s in steps if s.practitioner_role_id),
        any(s.target_kind == "coordinator" for s in steps),
    )
    role = next((r for r in services if r.id == step.role_id), None)
    hospital = request.target_organization_id or (services[0].organization_id if services else None)
    coordinator = (
        await coordinator_on_duty(session, hospital) if step.kind == "coordinator" else None
    )
    waited = f"chưa ai tiếp nhận sau lần {level} / unanswered at step {level}"
    await session.exec(
        insert(ConsultEscalation).values(
            id=new_id(),
            request_id=request.id,
            round_at=round_at,
            level=level,
            target_kind=step.kind,
            practitioner_role_id=role.id if role else None,
            user_id=coordinator.id if coordinator else None,
            reason=waited,
            at=utcnow(),
        )
    )
    if step.kind == "expire":
        await expire_request(session, request.id, EXPIRED_REASON)
        return
    assignee = role.practitioner_id if role else None
    await transition(
        session,
        None,
        request,
        "escalate",
        f"{waited}; → {'chuyên gia / specialist' if role else 'điều phối / coordinator'}",
        assigned_role_id=role.id if role else None,
        assigned_practitioner_id=assignee,
    )
    recipients = await practitioner_accounts(session, assignee) if role else []
    if coordinator is not None:
        recipients.append(coordinator.id)
    params = {
        "priority": request.priority.value,
        "requested_at": round_at.isoformat(),
        "request_id": str(request.id),
        "level": level,
    }
    for recipient in recipients:
        notify(
            session,
            "request.escalated",
            recipient_id=recipient,
            subject_id=request.id,
            params=params,
        )
    wait = timedelta(seconds=settings.escalation_deadlines_s[request.priority.value])
    schedule(
        session,
        ESCALATE,
        request.id,
        utcnow() + wait,
        {"priority": request.priority.value, "level": level + 1},
    )
