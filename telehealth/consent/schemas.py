"""What the consent API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from telehealth.consent.models import ConsentMethod, ConsentPurpose
from telehealth.fields import Schema

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ConsentCreate(Schema):
    """Nothing is assumed: every purpose the patient agreed to is named, none by default."""

    purposes: list[ConsentPurpose] = Field(
        min_length=1,
        max_length=3,
        description="each purpose the patient agreed to: remote_consultation, "
        "session_recording, record_sharing (sharing the record with the consulting facility)",
    )
    method: ConsentMethod = Field(
        description="signed_paper (give scan_attachment_id), spoken_before_witness (give "
        "witness_name) or electronic"
    )
    witness_name: Name | None = None
    scan_attachment_id: uuid.UUID | None = Field(
        default=None, description="an attachment of one of the patient's requests: the scan"
    )
    request_id: uuid.UUID | None = Field(
        default=None, description="the consult request the consent was given for, if any"
    )


class WithdrawalInput(Schema):
    reason: Reason | None = None


class ConsentRead(Schema):
    id: uuid.UUID
    patient_id: uuid.UUID
    purpose: ConsentPurpose
    method: ConsentMethod
    witness_name: str | None
    scan_attachment_id: uuid.UUID | None
    request_id: uuid.UUID | None
    recorded_by: uuid.UUID
    recorded_at: datetime
    active: bool
    withdrawn_at: datetime | None
    withdrawn_by: uuid.UUID | None
    withdrawal_reason: str | None
