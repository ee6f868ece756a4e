"""Access rules, both ways: who may read, register and administer, and who is refused."""

from __future__ import annotations

import uuid

import pytest

from telehealth.auth.access import (
    check_account_admin,
    check_directory_read,
    check_directory_write,
    check_own_account_change,
    check_patient_access,
    check_patient_registration,
    leaves_administration,
    patient_visibility,
)
from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.auth.scopes import parse_scopes
from telehealth.errors import InvalidInput, NotFound, PermissionDenied

STATION = uuid.uuid4()
OTHER_STATION = uuid.uuid4()


def person(role: Role, organization_id: uuid.UUID = STATION) -> Principal:
    return Principal(
        kind="user", id=uuid.uuid4(), name="x", role=role, organization_id=organization_id
    )


def system(scopes: str) -> Principal:
    return Principal(kind="client", id=uuid.uuid4(), name="HIS", scopes=parse_scopes(scopes))


class TestPatients:
    @pytest.mark.parametrize("permission", ["r", "u"])
    def test_requester_reaches_patients_of_own_facility(self, permission: str) -> None:
        check_patient_access(person(Role.REQUESTER), STATION, permission)

    @pytest.mark.parametrize("permission", ["r", "u"])
    def test_requester_is_told_not_found_for_other_facilities(self, permission: str) -> None:
        with pytest.raises(NotFound):
            check_patient_access(person(Role.REQUESTER), OTHER_STATION, permission)

    @pytest.mark.parametrize("role", [Role.SPECIALIST, Role.COORDINATOR, Role.ADMINISTRATOR])
    def test_other_roles_reach_no_patient_directly(self, role: Role) -> None:
        with pytest.raises(NotFound):
            check_patient_access(person(role), STATION)
        assert patient_visibility(person(role)).organization_ids == frozenset()
        assert not patient_visibility(person(role)).everyone

    def test_requester_registers_only_at_own_facility(self) -> None:
        check_patient_registration(person(Role.REQUESTER), STATION)
        with pytest.raises(PermissionDenied):
            check_patient_registration(person(Role.REQUESTER), OTHER_STATION)

    @pytest.mark.parametrize("role", [Role.SPECIALIST, Role.COORDINATOR, Role.ADMINISTRATOR])
    def test_other_roles_cannot_register_patients(self, role: Role) -> None:
        with pytest.raises(PermissionDenied):
            check_patient_registration(person(role), STATION)

    def test_client_with_patient_read_scope_reads_every_facility(self) -> None:
        client = system("system/Patient.rs")
        check_patient_access(client, STATION, "r")
        check_patient_access(client, OTHER_STATION, "r")
        assert patient_visibility(client, "s").everyone

    def test_client_without_the_letter_is_refused(self) -> None:
        client = system("system/Patient.rs")
        with pytest.raises(PermissionDenied, match=r"system/Patient\.u"):
            check_patient_access(client, STATION, "u")
        with pytest.raises(PermissionDenied, match=r"system/Patient\.c"):
            check_patient_registration(client, STATION)

    def test_client_without_patient_scope_is_refused(self) -> None:
        with pytest.raises(PermissionDenied):
            patient_visibility(system("system/Organization.rs"), "s")


class TestDirectory:
    @pytest.mark.parametrize("role", list(Role))
    def test_every_person_reads_the_directory(self, role: Role) -> None:
        check_directory_read(person(role), "Organization")

    def test_only_administrators_write_it(self) -> None:
        check_directory_write(person(Role.ADMINISTRATOR), "Organization")
        for role in (Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR):
            with pytest.raises(PermissionDenied, match="administrator"):
                check_directory_write(person(role), "Organization")

    def test_clients_read_and_write_by_scope(self) -> None:
        reader = system("system/Organization.rs")
        check_directory_read(reader, "Organization")
        with pytest.raises(PermissionDenied):
            check_directory_read(reader, "Practitioner")
        with pytest.raises(PermissionDenied):
            check_directory_write(reader, "Organization")
        check_directory_write(system("system/Organization.u"), "Organization")


class TestAccounts:
    def test_only_administrators_manage_accounts(self) -> None:
        check_account_admin(person(Role.ADMINISTRATOR))
        for role in (Role.REQUESTER, Role.SPECIALIST, Role.COORDINATOR):
            with pytest.raises(PermissionDenied):
                check_account_admin(person(role))

    def test_clients_never_manage_accounts_whatever_their_scopes(self) -> None:
        with pytest.raises(PermissionDenied, match="System clients"):
            check_account_admin(system("system/*.cruds"))


class TestAdministratorsKeepOffice:
    @pytest.mark.parametrize(
        ("active", "role", "leaves"),
        [
            (False, None, True),
            (None, Role.COORDINATOR, True),
            (True, Role.ADMINISTRATOR, False),
            (None, None, False),
            (True, None, False),
        ],
    )
    def test_which_changes_take_an_administrator_out_of_office(
        self, active: bool | None, role: Role | None, leaves: bool
    ) -> None:
        assert leaves_administration(active, role) is leaves

    @pytest.mark.parametrize(
        ("active", "role", "field"), [(False, None, "active"), (None, Role.SPECIALIST, "role")]
    )
    def test_an_administrator_cannot_remove_themselves(
        self, active: bool | None, role: Role | None, field: str
    ) -> None:
        admin = person(Role.ADMINISTRATOR)
        with pytest.raises(InvalidInput) as refused:
            check_own_account_change(admin, admin.id, active, role)
        assert refused.value.problems[0].field == field

    def test_but_may_change_others_and_their_own_other_settings(self) -> None:
        admin = person(Role.ADMINISTRATOR)
        check_own_account_change(admin, uuid.uuid4(), False, Role.REQUESTER)
        check_own_account_change(admin, admin.id, True, Role.ADMINISTRATOR)
        check_own_account_change(admin, admin.id, None, None)
