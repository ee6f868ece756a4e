"""Concluding a consult: the specialist completes it with diagnoses (WHO ICD-10), a
recommendation (treat locally, transfer, follow up) and advice; the session's real times come
from the video room's events. This is what the medical record (FHIR Encounter and Condition)
is made of."""

from __future__ import annotations

import uuid

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.principal import Caller
from telehealth.consults.booking import complete_consult, get_appointment
from telehealth.consults.models import ConsultConclusion, ConsultDiagnosis
from telehealth.consults.schemas import ConclusionInput, ConclusionRead, Diagnosis
from telehealth.errors import NotFound
from telehealth.rtc.presence import session_times
from telehealth.terminology import icd10
from telehealth.timeutil import utcnow


async def conclude_consult(
    session: AsyncSession, caller: Caller, appointment_id: uuid.UUID, data: ConclusionInput
) -> ConclusionRead:
    """Complete the appointment (same rules as ``complete``) and record its conclusion, in one
    transaction: a second conclusion fails as the completion does (409, already completed)."""
    codes = icd10.check_codes(data.diagnoses)
    appointment = await complete_consult(session, caller, appointment_id, None)
    times = await session_times(session, appointment.id)
    conclusion = ConsultConclusion(
        appointment_id=appointment.id,
        request_id=appointment.request_id,
        patient_id=appointment.patient_id,
        practitioner_id=appointment.practitioner_id,
        recommendation=data.recommendation,
        advice=data.advice,
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
        session_started_at=conclusion.session_started_at,
        session_ended_at=conclusion.session_ended_at,
        created_at=conclusion.created_at,
    )
