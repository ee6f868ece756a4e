"""Who is calling: a person with a role at a facility, or a system client with scopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from telehealth.auth.models import Role


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "client"]
    id: uuid.UUID
    name: str
    role: Role | None = None
    organization_id: uuid.UUID | None = None
    practitioner_id: uuid.UUID | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    language: str = "vi"
    # Someone else chose the password: this session may only change it.
    must_change_password: bool = False
    # The role must sign in with a second factor and none is enrolled: this session may only
    # enrol one (telehealth.auth.two_factor).
    must_enrol_two_factor: bool = False

    @property
    def is_user(self) -> bool:
        return self.kind == "user"


@dataclass(frozen=True)
class RequestOrigin:
    """Where a request came from, as the audit log records it."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass
class AuditNote:
    action: str
    entity_type: str
    entity_id: str | None
    patient_id: uuid.UUID | None
    detail: str | None


@dataclass
class Caller:
    """The principal plus where the request came from; collects audit notes for one use case."""

    principal: Principal
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    notes: list[AuditNote] = field(default_factory=list)

    def note(
        self,
        action: str,
        entity_type: str,
        entity_id: object | None = None,
        *,
        patient_id: uuid.UUID | None = None,
        detail: str | None = None,
    ) -> None:
        """Remember an access to record in the audit log, whatever the outcome."""
        self.notes.append(
            AuditNote(
                action,
                entity_type,
                None if entity_id is None else str(entity_id),
                patient_id,
                detail,
            )
        )
