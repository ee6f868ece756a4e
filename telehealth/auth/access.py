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
from telehealth.errors import InvalidInput, NotFound, PermissionDenied


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


def check_consent_write(principal: Principal, patient_organization_id: uuid.UUID) -> None:
    """A patient's consent is recorded or withdrawn by a doctor of the patient's facility, who
    speaks with the patient; specialists read it through their consults but never write it,
    and system clients only read it (FHIR ``Consent``)."""
    if principal.kind == "client":
        raise PermissionDenied("System clients cannot record or withdraw a patient's consent")
    require_role(principal, Role.REQUESTER)
    if not patient_visibility(principal, "u").covers(patient_organization_id):
        raise NotFound("No such patient, or not one you have access to")


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


def leaves_administration(active: bool | None, role: Role | None) -> bool:
    """Whether an account change (``None``: unchanged) would take an active administrator
    out of office, were the account one."""
    return active is False or (role is not None and role != Role.ADMINISTRATOR)


def check_own_account_change(
    principal: Principal, account_id: uuid.UUID, active: bool | None, role: Role | None
) -> None:
    """Administrators cannot lock themselves out: deactivating or demoting one's own account
    is for another administrator to do (who can also undo it)."""
    if principal.kind != "user" or principal.id != account_id:
        return
    if active is False:
        raise InvalidInput.for_field(
            "active",
            "you cannot deactivate your own account; ask another administrator to do it",
        )
    if role is not None and role != Role.ADMINISTRATOR:
        raise InvalidInput.for_field(
            "role",
            "you cannot give up your own administrator role; ask another administrator to do it",
        )


# Consults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One consult service a specialist offers: a specialty at an organization."""

    organization_id: uuid.UUID
    specialty_id: uuid.UUID | None


@dataclass(frozen=True)
class ConsultParties:
    """The facts of a consult request that decide who may see it and act on it."""

    requesting_organization_id: uuid.UUID
    target_organization_id: uuid.UUID | None  # None: any provincial hospital
    specialty_id: uuid.UUID
    assigned_practitioner_id: uuid.UUID | None


def _serves(consult: ConsultParties, services: frozenset[Service]) -> bool:
    return any(
        service.specialty_id == consult.specialty_id
        and consult.target_organization_id in (None, service.organization_id)
        for service in services
    )


def _coordinates(principal: Principal, consult: ConsultParties) -> bool:
    return principal.role == Role.COORDINATOR and consult.target_organization_id in (
        None,
        principal.organization_id,
    )


def consult_visible(
    principal: Principal, consult: ConsultParties, services: frozenset[Service]
) -> bool:
    """Requesters see their facility's requests; specialists those queued for one of their
    services or assigned to them; coordinators their hospital's queue (and untargeted ones)."""
    if principal.kind == "client":
        return scope_allows(principal.scopes, "ServiceRequest", "r")
    if principal.role == Role.REQUESTER:
        return consult.requesting_organization_id == principal.organization_id
    if principal.role == Role.SPECIALIST:
        assigned = consult.assigned_practitioner_id
        if assigned is not None and assigned == principal.practitioner_id:
            return True
        return assigned is None and _serves(consult, services)
    return _coordinates(principal, consult)


def check_consult_read(
    principal: Principal, consult: ConsultParties, services: frozenset[Service]
) -> None:
    if not consult_visible(principal, consult, services):
        raise NotFound("No such consult request, or not one you have access to")


def readable_through_consult(
    principal: Principal, consult: ConsultParties, services: frozenset[Service]
) -> bool:
    """Specialists and coordinators may read (never write) the patient of a consult that is
    queued or assigned to them: the one rule for patient reads through consults."""
    return (
        principal.kind == "user"
        and principal.role in (Role.SPECIALIST, Role.COORDINATOR)
        and consult_visible(principal, consult, services)
    )


def check_consult_patient_read(
    principal: Principal,
    patient_organization_id: uuid.UUID,
    consult: ConsultParties,
    services: frozenset[Service],
) -> None:
    """A patient's record is readable by their facility's doctors and, through a consult, by
    the specialists and coordinators that consult is queued or assigned to."""
    if patient_visibility(principal, "r").covers(patient_organization_id):
        return
    if readable_through_consult(principal, consult, services):
        return
    raise NotFound("No such patient, or not one you have access to")


REQUESTER_ACTIONS = frozenset({"create", "submit", "resubmit", "cancel", "book", "reschedule"})
SPECIALIST_ACTIONS = frozenset(
    {"accept", "decline", "book", "reschedule", "unschedule", "start", "complete", "no_show"}
)
COORDINATOR_ACTIONS = frozenset(
    {"assign", "decline", "requeue", "cancel", "book", "reschedule", "unschedule", "no_show"}
)


def check_consult_action(
    principal: Principal, action: str, consult: ConsultParties, services: frozenset[Service]
) -> None:
    """Who may take ``action`` on a request (reading it is checked first: 404 before 403)."""
    if principal.kind == "client":
        # A hospital system may book through FHIR ($book) with the scope to create appointments.
        if action == "book" and scope_allows(principal.scopes, "Appointment", "c"):
            return
        raise PermissionDenied(
            "System clients cannot act on consult requests, except booking with "
            "system/Appointment.c"
        )
    check_consult_read(principal, consult, services)
    role = principal.role
    if role == Role.REQUESTER and action in REQUESTER_ACTIONS:
        return
    if role == Role.SPECIALIST and action in SPECIALIST_ACTIONS:
        assigned = consult.assigned_practitioner_id
        if assigned is None and action in ("accept", "decline") and _serves(consult, services):
            return
        if assigned is not None and assigned == principal.practitioner_id:
            return
        raise PermissionDenied(
            f"Only a specialist of this service (or the one it is assigned to) may {action} it"
        )
    if role == Role.COORDINATOR and action in COORDINATOR_ACTIONS:
        return
    raise PermissionDenied(f"Your role ({role.value if role else 'none'}) cannot {action} requests")


# Video rooms ---------------------------------------------------------------------------------

NO_SUCH_ROOM = "Không có phòng khám này. / No such consult room."


def room_visible(
    principal: Principal, consult: ConsultParties, services: frozenset[Service], invited: bool
) -> bool:
    """A consult's video room is seen by whoever sees the consult (so that it never reaches
    further than its consult) and by the people a coordinator invited into it."""
    return invited or consult_visible(principal, consult, services)


def check_room_read(
    principal: Principal, consult: ConsultParties, services: frozenset[Service], invited: bool
) -> None:
    if not room_visible(principal, consult, services, invited):
        raise NotFound(NO_SUCH_ROOM)


def check_room_invite(
    principal: Principal, consult: ConsultParties, services: frozenset[Service]
) -> None:
    """Inviting into a room is for a coordinator who sees its consult (404 before 403)."""
    if not consult_visible(principal, consult, services):
        raise NotFound(NO_SUCH_ROOM)
    require_role(principal, Role.COORDINATOR)


def may_be_invited(
    invitee: Principal,
    consult: ConsultParties,
    services: frozenset[Service],
    hospital_id: uuid.UUID,
) -> bool:
    """Whom a room may be opened to: a clinician who could see the consult, or a specialist of
    the hospital holding it (a second opinion, an interpreter of its staff)."""
    if invitee.kind != "user" or invitee.role not in (Role.REQUESTER, Role.SPECIALIST):
        return False
    if consult_visible(invitee, consult, services):
        return True
    return invitee.role == Role.SPECIALIST and invitee.organization_id == hospital_id
