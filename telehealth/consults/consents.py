"""A patient's consents as their doctors record them: record (one row per purpose), list,
withdraw, and the signed paper scans among the consult attachments. With the consults: who may
read or write a patient's consents follows the patient's record, and a consent may name the
request and the scan it was given for.

Every read and change is audited like a patient read: noted before access is checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_consent_write
from telehealth.auth.principal import Caller
from telehealth.consent import rules
from telehealth.consent.checks import WITHDRAWN, active_purposes
from telehealth.consent.models import PatientConsent
from telehealth.consent.schemas import ConsentCreate
from telehealth.consults.models import ConsultAttachment, ConsultRequest
from telehealth.consults.patient_access import readable_patient
from telehealth.directory.models import Patient
from telehealth.errors import InvalidInput, InvalidTransition, NotFound
from telehealth.notices import announce
from telehealth.timeutil import utcnow

NO_SUCH_CONSENT = "No such consent of this patient"


async def _writable_patient(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID
) -> Patient:
    """Readable first (404 for those who may not know of the patient), then writable (403)."""
    patient = await readable_patient(session, caller, patient_id)
    check_consent_write(caller.principal, patient.organization_id)
    return patient


async def _check_links(session: AsyncSession, patient: Patient, data: ConsentCreate) -> None:
    """The request and the scan named must be the patient's own."""
    if data.request_id is not None:
        request = await session.get(ConsultRequest, data.request_id)
        if request is None or request.patient_id != patient.id:
            raise InvalidInput.for_field("request_id", "is not a consult request of this patient")
    if data.scan_attachment_id is not None:
        owner = (
            await session.exec(
                select(ConsultRequest.patient_id)
                .join(ConsultAttachment, col(ConsultAttachment.request_id) == ConsultRequest.id)
                .where(ConsultAttachment.id == data.scan_attachment_id)
            )
        ).first()
        if owner != patient.id:
            raise InvalidInput.for_field(
                "scan_attachment_id", "is not an attachment of a request of this patient"
            )


async def record_consents(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, data: ConsentCreate
) -> list[PatientConsent]:
    """One consent per purpose the patient agreed to. A purpose already consented to is
    refused (withdraw it first): one consent per purpose is in force at a time."""
    caller.note("create", "Consent", patient_id=patient_id)
    patient = await _writable_patient(session, caller, patient_id)
    rules.check_evidence(data.method, data.witness_name, data.scan_attachment_id)
    await _check_links(session, patient, data)
    purposes = list(dict.fromkeys(data.purposes))
    already = await active_purposes(session, patient.id)
    for purpose in purposes:
        if purpose in already:
            raise rules.already_recorded(purpose)
    now = utcnow()
    consents = [
        PatientConsent(
            patient_id=patient.id,
            purpose=purpose,
            method=data.method,
            witness_name=data.witness_name,
            scan_attachment_id=data.scan_attachment_id,
            request_id=data.request_id,
            recorded_by=caller.principal.id,
            recorded_at=now,
        )
        for purpose in purposes
    ]
    session.add_all(consents)
    await session.flush()
    # One audit row per consent: the note made before the checks names the first.
    first, *others = consents
    caller.notes[-1].entity_id, caller.notes[-1].detail = str(first.id), first.purpose.value
    for consent in others:
        caller.note(
            "create", "Consent", consent.id, patient_id=patient.id, detail=consent.purpose.value
        )
    return consents


async def list_consents(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID
) -> Sequence[PatientConsent]:
    """Every consent of the patient, withdrawn ones too, newest first."""
    caller.note("read", "Consent", patient_id=patient_id)
    await readable_patient(session, caller, patient_id)
    rows = await session.exec(
        select(PatientConsent)
        .where(PatientConsent.patient_id == patient_id)
        .order_by(col(PatientConsent.recorded_at).desc(), col(PatientConsent.id))
    )
    return rows.all()


async def withdraw_consent(
    session: AsyncSession,
    caller: Caller,
    patient_id: uuid.UUID,
    consent_id: uuid.UUID,
    reason: str | None,
) -> PatientConsent:
    """The consent ends now; the row stays, with who withdrew it, when and why."""
    caller.note("withdraw", "Consent", consent_id, patient_id=patient_id, detail=reason)
    await _writable_patient(session, caller, patient_id)
    consent = await session.get(PatientConsent, consent_id)
    if consent is None or consent.patient_id != patient_id:
        raise NotFound(NO_SUCH_CONSENT)
    result = await session.exec(
        update(PatientConsent)
        .where(col(PatientConsent.id) == consent_id, col(PatientConsent.withdrawn_at).is_(None))
        .values(
            withdrawn_at=utcnow(),
            withdrawn_by=caller.principal.id,
            withdrawal_reason=reason,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:
        raise InvalidTransition("This consent was withdrawn already")
    await session.refresh(consent)
    await session.run_sync(announce, WITHDRAWN, f"{patient_id} {consent.purpose.value}")
    return consent


async def scans_of(session: AsyncSession, patient_id: uuid.UUID) -> Sequence[ConsultAttachment]:
    """The files attached to the patient's requests: the scans a signed consent may name
    (for a caller who may read the patient, checked by the use case that shows them)."""
    rows = await session.exec(
        select(ConsultAttachment)
        .join(ConsultRequest, col(ConsultRequest.id) == col(ConsultAttachment.request_id))
        .where(ConsultRequest.patient_id == patient_id)
        .order_by(col(ConsultAttachment.created_at).desc())
    )
    return rows.all()
