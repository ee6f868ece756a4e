"""Pure decisions about consent: what evidence each way of giving it needs, and which consent
an action on a consult needs before it may go ahead."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from telehealth.consent.models import ConsentMethod, ConsentPurpose
from telehealth.errors import Conflict, DuplicateEntry, InvalidInput

# What stops when the patient has not consented to remote consultation, or has withdrawn it:
# sending the request (submit, resubmit), booking or moving its appointment, and starting the
# session. What happened before stays; a booked appointment is not cancelled by itself (the
# doctor cancels it and tells the specialist), but it can no longer be moved or started.
NEEDS_REMOTE_CONSULTATION = frozenset({"submit", "resubmit", "schedule", "reschedule", "start"})

_WHAT_TO_DO = {
    ConsentPurpose.REMOTE_CONSULTATION: (
        "Chưa có sự đồng ý hội chẩn từ xa của người bệnh / record the patient's consent to "
        "remote consultation first"
    ),
    ConsentPurpose.SESSION_RECORDING: (
        "Người bệnh chưa đồng ý ghi hình / the patient has not consented to recording the "
        "session: record the patient's consent to session recording first (the clinicians' "
        "agreement is not enough)"
    ),
    ConsentPurpose.RECORD_SHARING: (
        "Người bệnh chưa đồng ý chia sẻ hồ sơ / record the patient's consent to sharing the "
        "record with the consulting facility first"
    ),
}


def check_evidence(
    method: ConsentMethod, witness_name: str | None, scan_attachment_id: uuid.UUID | None
) -> None:
    """A signed paper needs its scan attached; a spoken consent needs its witness named."""
    if method == ConsentMethod.SIGNED_PAPER and scan_attachment_id is None:
        raise InvalidInput.for_field(
            "scan_attachment_id",
            "attach the scan of the signed form to the request, then give its id",
        )
    if method == ConsentMethod.SPOKEN_BEFORE_WITNESS and not witness_name:
        raise InvalidInput.for_field("witness_name", "name the witness of the spoken consent")


def required_purpose(action: str) -> ConsentPurpose | None:
    """The consent a consult action needs, or None."""
    if action in NEEDS_REMOTE_CONSULTATION:
        return ConsentPurpose.REMOTE_CONSULTATION
    return None


def missing_consent(purpose: ConsentPurpose) -> str:
    """What to tell a person stopped for want of the patient's consent to ``purpose``."""
    return _WHAT_TO_DO[purpose]


def already_recorded(purpose: ConsentPurpose) -> DuplicateEntry:
    """The refusal of a consent recorded twice (each purpose's sentence is translated)."""
    return DuplicateEntry(
        f"The patient's consent to {purpose.value.replace('_', ' ')} is recorded already; "
        "withdraw it first to record it anew"
    )


def check_consented(purpose: ConsentPurpose, active: Collection[ConsentPurpose]) -> None:
    """409 saying which consent to record, unless ``purpose`` is among the active ones."""
    if purpose not in active:
        raise Conflict(missing_consent(purpose))
