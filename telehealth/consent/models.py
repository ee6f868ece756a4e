"""Consents of patients, one row per purpose: how it was given, who recorded it and when, and
its withdrawal. A withdrawn consent stays (withdrawal is a state, never a delete); at most one
consent per patient and purpose is active at a time (partial unique index
``uq_patient_consent_active``), so two doctors recording at once cannot both win.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, text
from sqlmodel import Field

from telehealth.db import UTCDateTime
from telehealth.models import Entity, enum_type
from telehealth.timeutil import utcnow


class ConsentPurpose(StrEnum):
    REMOTE_CONSULTATION = "remote_consultation"  # hội chẩn, tư vấn từ xa
    SESSION_RECORDING = "session_recording"  # ghi hình buổi hội chẩn
    RECORD_SHARING = "record_sharing"  # chia sẻ hồ sơ với cơ sở hội chẩn


class ConsentMethod(StrEnum):
    SIGNED_PAPER = "signed_paper"  # giấy đồng ý có chữ ký, đã quét và đính kèm
    SPOKEN_BEFORE_WITNESS = "spoken_before_witness"  # đồng ý bằng lời, có người làm chứng
    ELECTRONIC = "electronic"  # đồng ý điện tử


ACTIVE_CONSENT = "withdrawn_at IS NULL"


class PatientConsent(Entity, table=True):
    __tablename__ = "patient_consent"
    __table_args__ = (
        Index(
            "uq_patient_consent_active",
            "patient_id",
            "purpose",
            unique=True,
            postgresql_where=text(ACTIVE_CONSENT),
            sqlite_where=text(ACTIVE_CONSENT),
        ),
    )

    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    purpose: ConsentPurpose = Field(sa_type=enum_type(ConsentPurpose, 24))
    method: ConsentMethod = Field(sa_type=enum_type(ConsentMethod, 24))
    scan_attachment_id: uuid.UUID | None = Field(
        default=None,
        foreign_key="consult_attachment.id",
        description="the scanned signed form (signed_paper)",
    )
    witness_name: str | None = Field(default=None, max_length=120)
    request_id: uuid.UUID | None = Field(default=None, foreign_key="consult_request.id")
    recorded_by: uuid.UUID = Field(foreign_key="user_account.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    withdrawal_reason: str | None = Field(default=None, max_length=500)

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None
