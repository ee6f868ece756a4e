"""Consult request use cases: create, act on (the state machine), read, queues.

Every state change goes through ``transition``: a conditional ``UPDATE ... WHERE status =
expected`` plus a row in ``consult_transition``, so two people acting at once cannot both win.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Update, bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import (
    check_consult_action,
    check_consult_patient_read,
    check_consult_read,
    check_patient_access,
    require_role,
)
from telehealth.auth.models import Role, UserAccount
from telehealth.auth.principal import Caller, Principal
from telehealth.availability.models import Slot, SlotStatus
from telehealth.consent.checks import require_consent_for
from telehealth.consults import rules
from telehealth.consults.models import (
    Appointment,
    AppointmentStatus,
    ConsultRequest,
    ConsultStatus,
    ConsultTransition,
)
from telehealth.consults.parties import caller_services, parties
from telehealth.consults.schemas import ConsultCreate
from telehealth.db import core_connection, table_of
from telehealth.directory.models import FacilityLevel, Organization, Patient, PractitionerRole
from telehealth.directory.service import specialty_by_code
from telehealth.errors import InvalidInput, InvalidTransition, NotFound
from telehealth.journal import journal
from telehealth.models import new_id
from telehealth.notifications.service import notify
from telehealth.rtc.service import close_room_of
from telehealth.settings import Settings
from telehealth.terminology import icd10
from telehealth.timers.service import cancel_timers, schedule
from telehealth.timeutil import utcnow

ESCALATE = "request.escalate"
_REQUESTS = table_of(ConsultRequest)
_TRANSITIONS = table_of(ConsultTransition)
_INSERT_TRANSITION = insert(_TRANSITIONS)


async def load_request(session: AsyncSession, request_id: uuid.UUID) -> ConsultRequest:
    request = await session.get(ConsultRequest, request_id)
    if request is None:
        raise NotFound("No such consult request, or not one you have access to")
    return request


@functools.cache
def _transition_statement(changed: tuple[str, ...]) -> Update:
    """The conditional UPDATE of a transition that also sets ``changed`` columns, built once
    per set of columns (executing a prepared statement costs a third less CPU)."""
    return (
        update(_REQUESTS)
        .where(
            _REQUESTS.c.id == bindparam("request_id"),
            _REQUESTS.c.status == bindparam("expected"),
        )
        .values({name: bindparam(f"set_{name}") for name in ("status", "updated_at", *changed)})
        .returning(*_REQUESTS.c)
    )


async def transition(
    session: AsyncSession,
    actor: Principal | None,
    request: ConsultRequest,
    action: str,
    reason: str | None = None,
    **changes: Any,
) -> ConsultStatus:
    """Apply a named action: decided by ``rules.next_status``, written only if the request is
    still in the state it was read in; otherwise 409 naming the state it is in now."""
    expected = request.status
    target = rules.next_status(action, expected, reason)
    now = utcnow()
    # Core statements: the new row comes back with RETURNING (no ORM bookkeeping, no second
    # read), goes into the loaded request, and is handed to the FHIR write-through as it is.
    connection = await core_connection(session)
    row = (
        await connection.execute(
            _transition_statement(tuple(sorted(changes))),
            {
                "request_id": request.id,
                "expected": expected,
                "set_status": target,
                "set_updated_at": now,
                **{f"set_{name}": value for name, value in changes.items()},
            },
        )
    ).first()
    if row is None:
        current = (
            await session.exec(select(ConsultRequest.status).where(ConsultRequest.id == request.id))
        ).one()
        raise InvalidTransition(
            f"Yêu cầu vừa được thay đổi, hiện ở trạng thái '{current}' / the request changed "
            f"meanwhile and is now {current}; cannot {action}"
        )
    for name, value in row._mapping.items():
        set_committed_value(request, name, value)
    journal(session).wrote(request)
    await connection.execute(
        _INSERT_TRANSITION,
        {
            "id": new_id(),
            "request_id": request.id,
            "action": action,
            "from_status": expected,
            "to_status": target,
            "actor_kind": actor.kind if actor else "system",
            "actor_id": actor.id if actor else None,
            "actor_name": actor.name[:120] if actor else None,
            "reason": reason,
            "at": now,
        },
    )
    return target


def _submitted(session: AsyncSession, request: ConsultRequest, settings: Settings) -> None:
    due = rules.escalation_due(
        request.priority, request.submitted_at or utcnow(), settings.escalation_deadlines_s
    )
    schedule(session, ESCALATE, request.id, due, {"priority": request.priority.value, "level": 1})


async def create_request(
    session: AsyncSession, caller: Caller, data: ConsultCreate, settings: Settings
) -> ConsultRequest:
    principal = caller.principal
    caller.note("create", "ConsultRequest", patient_id=data.patient_id)
    require_role(principal, Role.REQUESTER)
    patient = await session.get(Patient, data.patient_id)
    if patient is None:
        raise NotFound("No such patient, or not one you have access to")
    check_patient_access(principal, patient.organization_id, "r")
    if data.submit:  # a draft may wait for the consent; sending it may not
        await require_consent_for(session, patient.id, "submit")
    specialty = await specialty_by_code(session, data.specialty_code)
    if data.target_organization_id is not None:
        target = await session.get(Organization, data.target_organization_id)
        if target is None or target.level not in (FacilityLevel.PROVINCIAL, FacilityLevel.CENTRAL):
            raise InvalidInput.for_field(
                "target_organization_id", "must be a provincial or central hospital"
            )
    diagnoses = [
        {"code": item.code, "display": item.display} for item in icd10.check_codes(data.diagnoses)
    ]
    request = ConsultRequest(
        patient_id=patient.id,
        requesting_organization_id=patient.organization_id,
        requester_id=principal.id,
        activity_type=data.activity_type,
        specialty_id=specialty.id,
        target_organization_id=data.target_organization_id,
        priority=data.priority,
        priority_rank=rules.PRIORITY_RANK[data.priority],
        reason=data.reason,
        clinical_summary=data.clinical_summary,
        diagnoses=diagnoses,
        vital_signs=rules.check_vital_signs(dict(data.vital_signs)),
    )
    session.add(request)
    await session.flush()
    caller.notes[-1].entity_id = str(request.id)
    if data.submit:
        await transition(session, principal, request, "submit", submitted_at=utcnow())
        _submitted(session, request, settings)
    what = "request.submitted" if data.submit else "request.drafted"
    journal(session).changed("ConsultRequest", request.id, what)
    return request


async def get_request(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID
) -> ConsultRequest:
    request = await load_request(session, request_id)
    caller.note("read", "ConsultRequest", request_id, patient_id=request.patient_id)
    services = await caller_services(session, caller.principal)
    check_consult_read(caller.principal, parties(request), services)
    return request


async def get_request_patient(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID
) -> Patient:
    """The patient of a consult, for the specialists and coordinators it is queued to."""
    request = await load_request(session, request_id)
    caller.note("read", "Patient", request.patient_id, patient_id=request.patient_id)
    patient = await session.get(Patient, request.patient_id)
    if patient is None:
        raise NotFound("No such patient, or not one you have access to")
    services = await caller_services(session, caller.principal)
    check_consult_patient_read(
        caller.principal, patient.organization_id, parties(request), services
    )
    return patient


async def request_history(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID
) -> Sequence[ConsultTransition]:
    await get_request(session, caller, request_id)
    rows = await session.exec(
        select(ConsultTransition)
        .where(ConsultTransition.request_id == request_id)
        .order_by(col(ConsultTransition.at), col(ConsultTransition.id))
    )
    return rows.all()


async def practitioner_accounts(
    session: AsyncSession, practitioner_id: uuid.UUID | None
) -> list[uuid.UUID]:
    if practitioner_id is None:
        return []
    rows = await session.exec(
        select(UserAccount.id).where(UserAccount.practitioner_id == practitioner_id)
    )
    return list(rows.all())


async def act_on_request(
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    action: str,
    settings: Settings,
    *,
    reason: str | None = None,
    return_to: str = "queue",
    practitioner_role_id: uuid.UUID | None = None,
) -> ConsultRequest:
    """submit, resubmit, accept, assign, decline, cancel, requeue on a request (booking actions
    live in ``consults.booking``)."""
    request = await load_request(session, request_id)
    principal = caller.principal
    caller.note(action, "ConsultRequest", request_id, patient_id=request.patient_id, detail=reason)
    services = await caller_services(session, principal)
    check_consult_action(principal, action, parties(request), services)
    await require_consent_for(session, request.patient_id, action)
    now = utcnow()
    if action in ("submit", "resubmit"):
        await transition(
            session,
            principal,
            request,
            action,
            reason,
            submitted_at=now,
            assigned_role_id=None,
            assigned_practitioner_id=None,
        )
        _submitted(session, request, settings)
    elif action in ("accept", "assign"):
        role = await _role_for(session, principal, request, action, practitioner_role_id)
        await transition(
            session,
            principal,
            request,
            action,
            reason,
            accepted_at=now,
            assigned_role_id=role.id,
            assigned_practitioner_id=role.practitioner_id,
        )
        await cancel_timers(session, request.id, [ESCALATE])
        for recipient in [request.requester_id]:
            notify(session, "request.accepted", recipient_id=recipient, subject_id=request.id)
    elif action == "decline":
        await transition(session, principal, request, "decline", reason)
        if return_to == "queue":
            await transition(
                session,
                principal,
                request,
                "requeue",
                reason,
                assigned_role_id=None,
                assigned_practitioner_id=None,
            )
        else:
            await cancel_timers(session, request.id, [ESCALATE])
        notify(
            session,
            "request.declined",
            recipient_id=request.requester_id,
            subject_id=request.id,
            params={"reason": reason or ""},
        )
    elif action == "requeue":
        await transition(
            session,
            principal,
            request,
            "requeue",
            reason,
            assigned_role_id=None,
            assigned_practitioner_id=None,
        )
    elif action == "cancel":
        if request.status == ConsultStatus.SCHEDULED:
            await release_appointment_of(session, principal, request, reason or "")
        await transition(session, principal, request, "cancel", reason, status_reason=reason)
        await cancel_timers(session, request.id)
    else:
        raise InvalidInput.for_field("action", f"'{action}' is not an action on requests")
    journal(session).changed("ConsultRequest", request.id, f"request.{action}")
    return request


async def _role_for(
    session: AsyncSession,
    principal: Principal,
    request: ConsultRequest,
    action: str,
    practitioner_role_id: uuid.UUID | None,
) -> PractitionerRole:
    """The service a request is accepted into: the specialist's own, or the one assigned."""
    if action == "accept":
        roles = await session.exec(
            select(PractitionerRole).where(
                PractitionerRole.practitioner_id == principal.practitioner_id,
                PractitionerRole.specialty_id == request.specialty_id,
                col(PractitionerRole.active).is_(True),
            )
        )
        for role in roles.all():
            if request.target_organization_id in (None, role.organization_id):
                return role
        raise InvalidInput("You offer no service for this request's specialty and hospital")
    if practitioner_role_id is None:
        raise InvalidInput.for_field("practitioner_role_id", "say which specialist to assign")
    assigned = await session.get(PractitionerRole, practitioner_role_id)
    if (
        assigned is None
        or not assigned.active
        or assigned.specialty_id != request.specialty_id
        or request.target_organization_id not in (None, assigned.organization_id)
        or (principal.organization_id not in (None, assigned.organization_id))
    ):
        raise InvalidInput.for_field(
            "practitioner_role_id",
            "must be an active service of this specialty at your hospital",
        )
    return assigned


async def release_appointment_of(
    session: AsyncSession,
    actor: Principal | None,
    request: ConsultRequest,
    reason: str,
    status: AppointmentStatus = AppointmentStatus.CANCELLED,
) -> Appointment | None:
    """End the request's booked appointment (cancelled or no-show): its room closes, the slot
    is freed if the appointment is cancelled, its timers are cancelled, and both sides are
    told."""
    appointment = (
        await session.exec(
            select(Appointment).where(
                Appointment.request_id == request.id,
                Appointment.status == AppointmentStatus.BOOKED,
            )
        )
    ).first()
    if appointment is None:
        return None
    result = await session.exec(
        update(Appointment)
        .where(
            col(Appointment.id) == appointment.id,
            col(Appointment.status) == AppointmentStatus.BOOKED,
        )
        .values(status=status, status_reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session="evaluate")
    )
    if result.rowcount != 1:
        raise InvalidTransition("The appointment changed meanwhile; reload and retry")
    await close_room_of(session, appointment.id)
    if status == AppointmentStatus.CANCELLED:
        await session.exec(
            update(Slot)
            .where(col(Slot.id) == appointment.slot_id)
            .values(status=SlotStatus.FREE, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    await cancel_timers(session, appointment.id)
    kind = f"appointment.{status.value}"
    for recipient in [
        request.requester_id,
        *await practitioner_accounts(session, appointment.practitioner_id),
    ]:
        notify(
            session,
            kind,
            recipient_id=recipient,
            subject_id=appointment.id,
            params={"reason": reason, "starts_at": appointment.starts_at.isoformat()},
        )
    return appointment


# Jobs (called by timer handlers; no caller, safe to run twice) -------------------------------


async def expire_request(session: AsyncSession, request_id: uuid.UUID, reason: str) -> bool:
    """Mark an unanswered request expired; False if it has moved on meanwhile."""
    request = await session.get(ConsultRequest, request_id)
    if request is None or request.status not in (ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED):
        return False
    try:
        await transition(session, None, request, "expire", reason, status_reason=reason)
    except InvalidTransition:
        return False
    await cancel_timers(session, request.id)
    notify(session, "request.expired", recipient_id=request.requester_id, subject_id=request.id)
    return True
