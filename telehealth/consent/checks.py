"""The checks other areas make before what a consent allows (sending a request, booking,
recording a session), and the notice a withdrawal sends."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.consent import rules
from telehealth.consent.models import ConsentPurpose, PatientConsent

# Heard by every process once a withdrawal commits ("<patient id> <purpose>"): the one that
# records the patient's session stops it (``rtc.recording_consent``).
WITHDRAWN = "consent_withdrawn"


async def active_purposes(
    session: AsyncSession, patient_id: uuid.UUID, *, lock: bool = False
) -> set[ConsentPurpose]:
    """The purposes the patient consents to now. ``lock`` holds the consent rows until the
    transaction ends (PostgreSQL), so a withdrawal waits for the action it would have stopped,
    and the action after it sees the withdrawal."""
    statement = select(PatientConsent.purpose).where(
        PatientConsent.patient_id == patient_id, col(PatientConsent.withdrawn_at).is_(None)
    )
    if lock:
        statement = statement.with_for_update()
    return {ConsentPurpose(purpose) for purpose in (await session.exec(statement)).all()}


async def require_consent(
    session: AsyncSession, patient_id: uuid.UUID, purpose: ConsentPurpose
) -> None:
    """409 naming the consent to record, unless the patient consents to ``purpose`` now."""
    rules.check_consented(purpose, await active_purposes(session, patient_id, lock=True))


async def require_consent_for(session: AsyncSession, patient_id: uuid.UUID, action: str) -> None:
    """The consent a consult ``action`` needs (``rules.required_purpose``), if any."""
    purpose = rules.required_purpose(action)
    if purpose is not None:
        await require_consent(session, patient_id, purpose)
