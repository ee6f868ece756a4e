"""Consent decisions without a database: the evidence each way of giving it needs, what an
action on a consult needs, and who may record a consent."""

from __future__ import annotations

import uuid

import pytest

from telehealth.auth.access import check_consent_write
from telehealth.auth.models import Role
from telehealth.consent import rules
from telehealth.consent.models import ConsentMethod, ConsentPurpose
from telehealth.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tests.unit.test_access import OTHER_STATION, STATION, person, system


def test_each_way_of_giving_consent_needs_its_evidence() -> None:
    with pytest.raises(InvalidInput) as paper:
        rules.check_evidence(ConsentMethod.SIGNED_PAPER, "a witness", None)
    assert paper.value.problems[0].field == "scan_attachment_id"
    with pytest.raises(InvalidInput) as spoken:
        rules.check_evidence(ConsentMethod.SPOKEN_BEFORE_WITNESS, None, uuid.uuid4())
    assert spoken.value.problems[0].field == "witness_name"
    rules.check_evidence(ConsentMethod.SIGNED_PAPER, None, uuid.uuid4())
    rules.check_evidence(ConsentMethod.SPOKEN_BEFORE_WITNESS, "Lê Thị Hoa", None)
    rules.check_evidence(ConsentMethod.ELECTRONIC, None, None)


@pytest.mark.parametrize("action", ["submit", "resubmit", "schedule", "reschedule", "start"])
def test_moving_towards_a_consultation_needs_consent_to_it(action: str) -> None:
    assert rules.required_purpose(action) == ConsentPurpose.REMOTE_CONSULTATION


@pytest.mark.parametrize("action", ["cancel", "decline", "accept", "unschedule", "no_show"])
def test_stopping_or_answering_needs_no_consent(action: str) -> None:
    assert rules.required_purpose(action) is None


def test_a_missing_consent_says_which_to_record() -> None:
    with pytest.raises(Conflict, match="consent to remote consultation first"):
        rules.check_consented(ConsentPurpose.REMOTE_CONSULTATION, {ConsentPurpose.RECORD_SHARING})
    with pytest.raises(Conflict, match="clinicians' agreement is not enough"):
        rules.check_consented(ConsentPurpose.SESSION_RECORDING, set())
    rules.check_consented(ConsentPurpose.SESSION_RECORDING, {ConsentPurpose.SESSION_RECORDING})


def test_the_patients_own_doctors_record_consent() -> None:
    check_consent_write(person(Role.REQUESTER), STATION)
    with pytest.raises(NotFound):
        check_consent_write(person(Role.REQUESTER, OTHER_STATION), STATION)


@pytest.mark.parametrize("role", [Role.SPECIALIST, Role.COORDINATOR, Role.ADMINISTRATOR])
def test_other_roles_never_record_consent(role: Role) -> None:
    with pytest.raises(PermissionDenied):
        check_consent_write(person(role), STATION)


def test_system_clients_never_record_consent() -> None:
    with pytest.raises(PermissionDenied):
        check_consent_write(system("system/Patient.cruds system/Consent.cruds"), STATION)
