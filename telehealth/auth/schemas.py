"""What account and client administration accept and return at the edge (the API and the
pages alike), and how an audit event is shown."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from telehealth.auth.models import AuditOutcome, Role
from telehealth.fields import Email, Name


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[a-z0-9._-]{3,64}$")
    password: str = Field(min_length=1, max_length=200)
    display_name: Name
    role: Role
    organization_id: uuid.UUID
    practitioner_id: uuid.UUID | None = None
    language: str = Field(default="vi", pattern="^(vi|en)$")
    email: Email | None = None


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool | None = None
    role: Role | None = None
    unlock: bool = False
    new_password: str | None = Field(default=None, min_length=1, max_length=200)
    language: str | None = Field(default=None, pattern="^(vi|en)$")
    reset_two_factor: bool = Field(
        default=False,
        description="remove the account's authenticator (a lost phone without recovery codes)",
    )


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    organization_id: uuid.UUID
    practitioner_id: uuid.UUID | None
    language: str
    active: bool
    locked_until: datetime | None
    two_factor_enrolled: bool = False


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str = Field(pattern=r"^[a-z0-9._-]{3,64}$")
    name: Name
    scopes: str = Field(
        min_length=1, max_length=2000, examples=["system/Patient.rs system/Appointment.cruds"]
    )
    organization_id: uuid.UUID | None = None


class ClientCreated(BaseModel):
    client_id: str
    name: str
    scopes: str
    client_secret: str = Field(description="shown once; store it now")


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    recorded_at: datetime
    actor_kind: str
    actor_id: str | None
    actor_name: str | None
    action: str
    entity_type: str
    entity_id: str | None
    patient_id: uuid.UUID | None
    outcome: AuditOutcome
    ip: str | None
    user_agent: str | None
    request_id: str | None
    detail: str | None
