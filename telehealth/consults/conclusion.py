"""Concluding a consult: the specialist completes it with diagnoses (WHO ICD-10), a
recommendation (treat locally, transfer, follow up) and advice; the session's real times come
from the video room's events. This is what the medical record (FHIR Encounter and Condition)
is made of."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_consult_action, check_consult_read
from telehealth.auth.principal import Caller
from telehealth.consults.booking import complete_consult, get_appointment
from telehealth.consults.models import (
    Appointment,
    AppointmentStatus,
    ConsultConclusion,
    ConsultDiagnosis,
)
from telehealth.consults.parties import caller_services, parties
from telehealth.consults.schemas import ConclusionInput, ConclusionRead, Diagnosis
from telehealth.consults.service import load_request
from telehealth.errors import InvalidInput, InvalidTransition, NotFound
from telehealth.journal import journal
from telehealth.rtc.presence import session_times
from telehealth.terminology import icd10
from telehealth.timeutil import local, utcnow

FOLLOW_UP_WITHIN = timedelta(days=366)


def check_follow_up(day: date | None, today: date) -> None:
    """A follow-up is a day to come (today at the earliest), within a year."""
    if day is None:
        return
    if day < today:
        raise InvalidInput.for_field("follow_up_on", "is in the past")
    if day > today + FOLLOW_UP_WITHIN:
        raise InvalidInput.for_field("follow_up_on", "is more than a year ahead")


async def check_may_conclude(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID
) -> Appointment:
    """The appointment, if the caller may conclude it now (the rules of ``complete``: the
    assigned specialist, a booked or started consult); refused otherwise, as concluding would
    be. For showing the conclusion form before anything is written."""
    appointment = await get_appointment(session, caller, appointment_id)
    request = await load_request(session, appointment.request_id)
    services = await caller_services(session, caller.principal)
    check_consult_action(caller.principal, "complete", parties(request), services)
    if appointment.status not in (AppointmentStatus.BOOKED, AppointmentStatus.IN_PROGRESS):
        raise InvalidTransition(
            f"The appointment is {appointment.status.value}; only a booked one can be concluded"
        )
    return appointment


async def conclude_consult(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID, data: ConclusionInput
) -> ConclusionRead:
    """Complete the appointment (same rules as ``complete``) and record its conclusion, in one
    transaction: a second conclusion fails as the completion does (409, already completed)."""
    codes = icd10.check_codes(data.diagnoses)
    check_follow_up(data.follow_up_on, local(utcnow()).date())
    appointment = await complete_consult(session, caller, appointment_id, None)
    times = await session_times(session, appointment.id)
    conclusion = ConsultConclusion(
        appointment_id=appointment.id,
        request_id=appointment.request_id,
        patient_id=appointment.patient_id,
        practitioner_id=appointment.practitioner_id,
        recommendation=data.recommendation,
        advice=data.advice,
        follow_up_on=data.follow_up_on,
        session_started_at=times.started_at if times else None,
        # Still connected when the specialist concludes: the conclusion ends the session.
        session_ended_at=(times.ended_at or utcnow()) if times and times.started_at else None,
        recorded_by=caller.principal.id,
    )
    session.add(conclusion)
    for rank, code in enumerate(codes, start=1):
        session.add(
            ConsultDiagnosis(
                conclusion_id=conclusion.id,
                request_id=appointment.request_id,
                patient_id=appointment.patient_id,
                rank=rank,
                code=code.code,
                display=code.display,
            )
        )
    caller.note("conclude", "ConsultConclusion", conclusion.id, patient_id=appointment.patient_id)
    await session.flush()
    journal(session).changed("ConsultRequest", appointment.request_id, "appointment.conclude")
    return _read(conclusion, [{"code": c.code, "display": c.display} for c in codes])


async def get_conclusion(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID
) -> ConclusionRead:
    await get_appointment(session, caller, appointment_id)  # access check and audit
    conclusion = (
        await session.exec(
            select(ConsultConclusion).where(ConsultConclusion.appointment_id == appointment_id)
        )
    ).first()
    if conclusion is None:
        raise NotFound("This consult has no conclusion yet")
    return await _with_diagnoses(session, conclusion)


async def conclusions_of_request(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID
) -> list[ConclusionRead]:
    """The conclusions of a request's consults, oldest first (for the request's page: the
    requesting doctor reads what the specialist concluded). Access as reading the request."""
    request = await load_request(session, request_id)
    services = await caller_services(session, caller.principal)
    check_consult_read(caller.principal, parties(request), services)
    rows = await session.exec(
        select(ConsultConclusion)
        .where(ConsultConclusion.request_id == request_id)
        .order_by(col(ConsultConclusion.created_at))
    )
    found = [await _with_diagnoses(session, c) for c in rows.all()]
    if found:
        caller.note("read", "ConsultConclusion", found[0].id, patient_id=request.patient_id)
    return found


async def _with_diagnoses(session: AsyncSession, conclusion: ConsultConclusion) -> ConclusionRead:
    diagnoses = (
        await session.exec(
            select(ConsultDiagnosis)
            .where(ConsultDiagnosis.conclusion_id == conclusion.id)
            .order_by(ConsultDiagnosis.rank)  # type: ignore[arg-type]
        )
    ).all()
    return _read(conclusion, [{"code": d.code, "display": d.display} for d in diagnoses])


def _read(conclusion: ConsultConclusion, diagnoses: list[dict[str, str]]) -> ConclusionRead:
    return ConclusionRead(
        id=conclusion.id,
        appointment_id=conclusion.appointment_id,
        request_id=conclusion.request_id,
        diagnoses=[Diagnosis(**d) for d in diagnoses],
        recommendation=conclusion.recommendation,
        advice=conclusion.advice,
        follow_up_on=conclusion.follow_up_on,
        session_started_at=conclusion.session_started_at,
        session_ended_at=conclusion.session_ended_at,
        created_at=conclusion.created_at,
    )
