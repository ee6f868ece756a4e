"""Who may see and act on a consult request (auth.access), both ways, without a database."""

from __future__ import annotations

import uuid

import pytest

from telehealth.auth.access import (
    ConsultParties,
    Service,
    check_consult_action,
    check_consult_patient_read,
    check_room_invite,
    check_room_read,
    consult_visible,
    may_be_invited,
    room_visible,
)
from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.errors import NotFound, PermissionDenied

COMMUNE, OTHER_COMMUNE, HOSPITAL, OTHER_HOSPITAL = (uuid.uuid4() for _ in range(4))
CARDIOLOGY, DERMATOLOGY = uuid.uuid4(), uuid.uuid4()
TIM, DA = uuid.uuid4(), uuid.uuid4()
QUEUED = ConsultParties(COMMUNE, HOSPITAL, CARDIOLOGY, None)
ASSIGNED = ConsultParties(COMMUNE, HOSPITAL, CARDIOLOGY, TIM)
TIM_SERVICES = frozenset({Service(HOSPITAL, CARDIOLOGY)})
DA_SERVICES = frozenset({Service(HOSPITAL, DERMATOLOGY)})


def person(role: Role, org: uuid.UUID, practitioner: uuid.UUID | None = None) -> Principal:
    return Principal("user", uuid.uuid4(), "x", role, org, practitioner)


def test_requesters_see_their_facility_only() -> None:
    assert consult_visible(person(Role.REQUESTER, COMMUNE), QUEUED, frozenset())
    assert not consult_visible(person(Role.REQUESTER, OTHER_COMMUNE), QUEUED, frozenset())
    with pytest.raises(NotFound):
        check_consult_action(person(Role.REQUESTER, OTHER_COMMUNE), "book", QUEUED, frozenset())


def test_specialists_see_their_services_queue_and_what_is_assigned_to_them() -> None:
    tim = person(Role.SPECIALIST, HOSPITAL, TIM)
    da = person(Role.SPECIALIST, HOSPITAL, DA)
    assert consult_visible(tim, QUEUED, TIM_SERVICES)
    assert not consult_visible(da, QUEUED, DA_SERVICES)
    check_consult_action(tim, "accept", QUEUED, TIM_SERVICES)
    with pytest.raises(NotFound):
        check_consult_action(da, "accept", QUEUED, DA_SERVICES)
    # once assigned to Tim, another cardiologist no longer sees it
    other_cardiologist = person(Role.SPECIALIST, HOSPITAL, uuid.uuid4())
    assert not consult_visible(other_cardiologist, ASSIGNED, TIM_SERVICES)
    check_consult_action(tim, "complete", ASSIGNED, TIM_SERVICES)
    with pytest.raises(PermissionDenied):
        check_consult_action(tim, "complete", QUEUED, TIM_SERVICES)
    with pytest.raises(PermissionDenied):
        check_consult_action(tim, "assign", QUEUED, TIM_SERVICES)


def test_untargeted_requests_reach_every_provincial_service() -> None:
    anywhere = ConsultParties(COMMUNE, None, CARDIOLOGY, None)
    elsewhere = person(Role.SPECIALIST, OTHER_HOSPITAL, uuid.uuid4())
    assert consult_visible(elsewhere, anywhere, frozenset({Service(OTHER_HOSPITAL, CARDIOLOGY)}))
    assert not consult_visible(elsewhere, QUEUED, frozenset({Service(OTHER_HOSPITAL, CARDIOLOGY)}))


def test_coordinators_see_their_hospital_queue() -> None:
    coordinator = person(Role.COORDINATOR, HOSPITAL)
    assert consult_visible(coordinator, QUEUED, frozenset())
    check_consult_action(coordinator, "assign", QUEUED, frozenset())
    assert not consult_visible(person(Role.COORDINATOR, OTHER_HOSPITAL), QUEUED, frozenset())
    with pytest.raises(PermissionDenied):
        check_consult_action(coordinator, "accept", QUEUED, frozenset())


def test_patient_of_a_consult_is_readable_by_those_it_is_queued_to() -> None:
    check_consult_patient_read(
        person(Role.SPECIALIST, HOSPITAL, TIM), COMMUNE, QUEUED, TIM_SERVICES
    )
    check_consult_patient_read(person(Role.COORDINATOR, HOSPITAL), COMMUNE, QUEUED, frozenset())
    check_consult_patient_read(person(Role.REQUESTER, COMMUNE), COMMUNE, QUEUED, frozenset())
    for refused, services in (
        (person(Role.SPECIALIST, HOSPITAL, DA), DA_SERVICES),
        (person(Role.REQUESTER, OTHER_COMMUNE), frozenset()),
        (person(Role.ADMINISTRATOR, HOSPITAL), frozenset()),
    ):
        with pytest.raises(NotFound):
            check_consult_patient_read(refused, COMMUNE, QUEUED, services)


def test_system_clients_read_with_scope_but_do_not_act() -> None:
    client = Principal(
        "client", uuid.uuid4(), "his", scopes=frozenset({"system/ServiceRequest.rs"})
    )
    assert consult_visible(client, QUEUED, frozenset())
    assert not consult_visible(Principal("client", uuid.uuid4(), "his"), QUEUED, frozenset())
    with pytest.raises(PermissionDenied):
        check_consult_action(client, "cancel", QUEUED, frozenset())


def test_rooms_are_seen_as_their_consult_is_and_by_those_invited() -> None:
    coordinator, elsewhere = (
        person(Role.COORDINATOR, HOSPITAL),
        person(Role.COORDINATOR, OTHER_HOSPITAL),
    )
    assert room_visible(coordinator, ASSIGNED, frozenset(), invited=False)
    assert not room_visible(elsewhere, ASSIGNED, frozenset(), invited=False)
    assert room_visible(person(Role.SPECIALIST, HOSPITAL, DA), ASSIGNED, DA_SERVICES, invited=True)
    with pytest.raises(NotFound):
        check_room_read(person(Role.REQUESTER, OTHER_COMMUNE), ASSIGNED, frozenset(), False)
    check_room_invite(coordinator, ASSIGNED, frozenset())
    with pytest.raises(NotFound):
        check_room_invite(elsewhere, ASSIGNED, frozenset())
    with pytest.raises(PermissionDenied):
        check_room_invite(person(Role.SPECIALIST, HOSPITAL, TIM), ASSIGNED, TIM_SERVICES)


def test_only_clinicians_of_the_consult_or_its_hospital_may_be_invited() -> None:
    def invitable(invitee: Principal, services: frozenset[Service] = frozenset()) -> bool:
        return may_be_invited(invitee, ASSIGNED, services, HOSPITAL)

    assert invitable(person(Role.REQUESTER, COMMUNE))
    assert invitable(person(Role.SPECIALIST, HOSPITAL, DA), DA_SERVICES)  # a second opinion
    assert not invitable(person(Role.REQUESTER, OTHER_COMMUNE))
    assert not invitable(person(Role.SPECIALIST, OTHER_HOSPITAL, uuid.uuid4()))
    assert not invitable(person(Role.COORDINATOR, HOSPITAL))
    assert not invitable(person(Role.ADMINISTRATOR, HOSPITAL))
