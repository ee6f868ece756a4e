"""Accounts of people and systems, refresh tokens, and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from telehealth.db import UTCDateTime
from telehealth.models import Entity, enum_type, new_id
from telehealth.timeutil import utcnow


class Role(StrEnum):
    REQUESTER = "requester"  # commune or district doctor asking for consults
    SPECIALIST = "specialist"
    COORDINATOR = "coordinator"
    ADMINISTRATOR = "administrator"


class UserAccount(Entity, table=True):
    __tablename__ = "user_account"

    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=200)
    display_name: str = Field(max_length=120)
    role: Role = Field(sa_type=enum_type(Role))
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    practitioner_id: uuid.UUID | None = Field(default=None, foreign_key="practitioner.id")
    language: str = Field(default="vi", max_length=2)
    email: str | None = Field(default=None, max_length=200)
    active: bool = True
    # For administrators to see: the latest time until which some address is shut out of
    # this account (telehealth.auth.throttle decides; the owner elsewhere may still log in).
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    password_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Access tokens issued before this are refused (deactivated, role or password changed).
    sessions_reset_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when someone else chose the password (an administrator's account or reset): until
    # the owner picks their own, a session may only change it (telehealth.auth.passwords).
    must_change_password: bool = False
    # The last login or token refresh (or re-activation); accounts idle for
    # ``account_idle_days`` are disabled by a daily job (telehealth.auth.idle).
    # Nullable only so that the column could be added in place; every row has one.
    last_active_at: datetime | None = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PasswordHistory(SQLModel, table=True):
    """An account's earlier password hashes, so that the last few are not chosen again."""

    __tablename__ = "password_history"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    password_hash: str = Field(max_length=200)
    replaced_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TwoFactor(SQLModel, table=True):
    """An account's authenticator (TOTP, RFC 6238): its secret, encrypted with a key derived
    from the service's signing key, and the last time step accepted, so that no code is
    accepted twice. Unconfirmed (``confirmed_at`` None) until the owner types a first code."""

    __tablename__ = "two_factor"

    user_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True)
    secret: str = Field(max_length=300)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_step: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RecoveryCode(SQLModel, table=True):
    """One single-use recovery code, for a lost phone; stored only as a SHA-256 hash (the
    codes are random, so a slow hash adds nothing)."""

    __tablename__ = "recovery_code"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Recent failed logins from one source address, to one name or to any (``username``
    None). A row, not process memory, so that every process counts the same failures."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=140)
    address: str = Field(max_length=64)
    username: str | None = Field(default=None, max_length=64, index=True)
    failures: int = 0
    last_failure_at: datetime = Field(sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SystemClient(Entity, table=True):
    """A hospital system that calls the APIs with client credentials and scopes."""

    __tablename__ = "system_client"

    client_id: str = Field(max_length=64, unique=True)
    secret_hash: str = Field(max_length=200)
    name: str = Field(max_length=120)
    scopes: str = Field(max_length=2000, description="space-separated SMART system scopes")
    organization_id: uuid.UUID | None = Field(default=None, foreign_key="organization.id")
    active: bool = True


class RefreshToken(SQLModel, table=True):
    """One refresh token, stored only as a hash; rotated on every use."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


class AuditEvent(SQLModel, table=True):
    """Who did what to which record, when, from where, and how it ended."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_recorded", "recorded_at"),
        Index("ix_audit_event_patient", "patient_id", "recorded_at"),
        # Unique: two writers can never both extend the chain from the same row.
        Index("ux_audit_event_seq", "seq", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor_kind: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=64, index=True)
    actor_name: str | None = Field(default=None, max_length=120)
    action: str = Field(max_length=32)
    entity_type: str = Field(max_length=40)
    entity_id: str | None = Field(default=None, max_length=64)
    patient_id: uuid.UUID | None = Field(default=None)
    outcome: AuditOutcome = Field(sa_type=enum_type(AuditOutcome, 8))
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    request_id: str | None = Field(default=None, max_length=40)
    detail: str | None = Field(default=None, max_length=500)
    # The hash chain: see telehealth.auth.audit_chain.
    seq: int = Field(sa_type=BigInteger)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """Where the chain stood when rows older than the retention period were deleted: the
    last deleted row's seq and hash. Verification starts from the newest checkpoint."""

    __tablename__ = "audit_checkpoint"

    seq: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    hash: str = Field(max_length=64)
    pruned_at: datetime = Field(sa_type=UTCDateTime)
    pruned_rows: int = Field(sa_type=BigInteger)
    recorded_before: datetime = Field(
        sa_type=UTCDateTime, description="the retention cut-off: rows older than this went"
    )
