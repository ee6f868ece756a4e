"""Who may do what: every authorisation decision of the service, as plain functions.

People are limited by role and facility; system clients by their SMART scopes. Patients whose
existence the caller may not know of are reported as not found rather than forbidden.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.auth.scopes import scope_allows
from telehealth.errors import NotFound, PermissionDenied


@dataclass(frozen=True)
class PatientVisibility:
    """Which patients a caller may see: all of them, or those of some facilities."""

    everyone: bool = False
    organization_ids: frozenset[uuid.UUID] = frozenset()

    def covers(self, organization_id: uuid.UUID) -> bool:
        return self.everyone or organization_id in self.organization_ids


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        wanted = ", ".join(role.value for role in roles)
        raise PermissionDenied(f"This action needs one of the roles: {wanted}")


def require_scope(principal: Principal, resource: str, permission: str) -> None:
    if not scope_allows(principal.scopes, resource, permission):
        raise PermissionDenied(
            f"The client's scopes do not allow '{permission}' on {resource} "
            f"(needs e.g. system/{resource}.{permission})"
        )


def patient_visibility(principal: Principal, permission: str = "r") -> PatientVisibility:
    """The patients a caller may read (``r``/``s``) or write (``c``/``u``)."""
    if principal.kind == "client":
        require_scope(principal, "Patient", permission)
        return PatientVisibility(everyone=True)
    if principal.role == Role.REQUESTER and principal.organization_id is not None:
        return PatientVisibility(organization_ids=frozenset({principal.organization_id}))
    # Specialists and coordinators reach patients through the consults assigned to them;
    # administrators manage the directory and accounts, not clinical records.
    return PatientVisibility()


def check_patient_access(
    principal: Principal, organization_id: uuid.UUID, permission: str = "r"
) -> None:
    if not patient_visibility(principal, permission).covers(organization_id):
        raise NotFound("No such patient, or not one you have access to")


def check_patient_registration(principal: Principal, organization_id: uuid.UUID) -> None:
    """Creating or moving a patient to a facility: only that facility's doctors (or scopes)."""
    if not patient_visibility(principal, "c").covers(organization_id):
        raise PermissionDenied("You can only register patients at your own facility")


def check_directory_read(principal: Principal, resource: str) -> None:
    if principal.kind == "client":
        require_scope(principal, resource, "r")


def check_directory_write(principal: Principal, resource: str) -> None:
    if principal.kind == "client":
        require_scope(principal, resource, "u")
        return
    require_role(principal, Role.ADMINISTRATOR)


def check_account_admin(principal: Principal) -> None:
    if principal.kind == "client":
        raise PermissionDenied("System clients cannot manage accounts")
    require_role(principal, Role.ADMINISTRATOR)
