"""SMART system scopes: what is accepted (v1 and v2 forms), what is refused, what they allow."""

from __future__ import annotations

import pytest

from telehealth.auth.scopes import parse_scopes, scope_allows


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("system/Patient.rs", {"system/Patient.rs"}),
        ("system/Patient.read", {"system/Patient.rs"}),
        ("system/Patient.write", {"system/Patient.cud"}),
        ("system/Patient.*", {"system/Patient.cruds"}),
        ("system/*.read", {"system/*.rs"}),
        ("system/Appointment.cruds", {"system/Appointment.cruds"}),
        (
            "  system/Patient.r   system/Observation.s ",
            {"system/Patient.r", "system/Observation.s"},
        ),
        ("system/Patient.rs system/Patient.read", {"system/Patient.rs"}),
        ("", set()),
    ],
)
def test_accepted_forms_are_normalised(text: str, parsed: set[str]) -> None:
    assert parse_scopes(text) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "patient/Patient.rs",  # only system scopes for system clients
        "user/Patient.read",
        "openid",
        "system/patient.rs",  # resource types are capitalised
        "system/Patient.sr",  # v2 letters come in the order c r u d s
        "system/Patient.rr",
        "system/Patient.rx",
        "system/Patient.",
        "system/Patient",
        "system/Patient.rs?category=vital-signs",
        "system/Patient.rs system/Bad-Type.rs",
    ],
)
def test_malformed_scopes_are_refused_with_the_culprit_named(text: str) -> None:
    with pytest.raises(ValueError, match="'") as caught:
        parse_scopes(text)
    assert text.split()[-1].split("?")[0][:10] in str(caught.value)


def test_scope_allows_only_its_resource_and_letters() -> None:
    scopes = parse_scopes("system/Patient.rs system/Appointment.cruds")
    assert scope_allows(scopes, "Patient", "r")
    assert scope_allows(scopes, "Patient", "s")
    assert not scope_allows(scopes, "Patient", "c")
    assert not scope_allows(scopes, "Patient", "u")
    assert scope_allows(scopes, "Appointment", "d")
    assert not scope_allows(scopes, "Practitioner", "r")
    assert not scope_allows(scopes, "PatientX", "r")


def test_wildcard_resource_allows_every_resource_but_only_its_letters() -> None:
    scopes = parse_scopes("system/*.read")
    assert scope_allows(scopes, "Patient", "r")
    assert scope_allows(scopes, "Organization", "s")
    assert not scope_allows(scopes, "Organization", "u")


def test_v1_write_allows_create_update_delete_but_not_read() -> None:
    scopes = parse_scopes("system/Patient.write")
    assert all(scope_allows(scopes, "Patient", p) for p in "cud")
    assert not scope_allows(scopes, "Patient", "r")


def test_no_scopes_allow_nothing() -> None:
    assert not scope_allows(frozenset(), "Patient", "r")
