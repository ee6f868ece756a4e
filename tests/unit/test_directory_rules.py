"""The facility hierarchy and the patient-data rules, without a database."""

from __future__ import annotations

from datetime import date

import pytest

from telehealth.directory import rules
from telehealth.directory.models import FacilityLevel, Gender
from telehealth.errors import InvalidInput

L = FacilityLevel


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (L.PROVINCIAL, L.CENTRAL),
        (L.DISTRICT, L.PROVINCIAL),
        (L.COMMUNE, L.DISTRICT),
        (L.COMMUNE, L.PROVINCIAL),  # where districts were merged away
        (L.COMMUNE, L.CENTRAL),
    ],
)
def test_a_facility_sits_under_a_higher_level(child: FacilityLevel, parent: FacilityLevel) -> None:
    rules.check_parent_level(child, parent)


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (L.COMMUNE, L.COMMUNE),
        (L.DISTRICT, L.DISTRICT),
        (L.PROVINCIAL, L.DISTRICT),
        (L.CENTRAL, L.COMMUNE),
        (L.CENTRAL, L.CENTRAL),
    ],
)
def test_never_under_its_own_level_or_a_lower_one(
    child: FacilityLevel, parent: FacilityLevel
) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.check_parent_level(child, parent)
    assert refused.value.problems[0].field == "parent_id"
    assert child.value in refused.value.detail and parent.value in refused.value.detail


def test_a_facility_stays_above_the_facilities_under_it() -> None:
    rules.check_child_levels(L.DISTRICT, {L.COMMUNE})
    rules.check_child_levels(L.COMMUNE, set())
    with pytest.raises(InvalidInput) as refused:
        rules.check_child_levels(L.COMMUNE, {L.COMMUNE})
    assert refused.value.problems[0].field == "level"
    with pytest.raises(InvalidInput):
        rules.check_child_levels(L.DISTRICT, {L.COMMUNE, L.DISTRICT})


def test_birth_date_is_neither_future_nor_implausibly_old() -> None:
    today = date(2026, 11, 24)
    rules.check_birth_date(today, today)
    rules.check_birth_date(date(1930, 1, 1), today)
    with pytest.raises(InvalidInput, match="future"):
        rules.check_birth_date(date(2026, 11, 25), today)
    with pytest.raises(InvalidInput, match="1890"):
        rules.check_birth_date(date(1889, 12, 31), today)


def test_identifier_problems_name_the_field() -> None:
    cases = [
        (lambda: rules.clean_national_id("123", date(1985, 1, 1), Gender.MALE), "national_id"),
        (lambda: rules.clean_insurance_number("XX"), "insurance_number"),
        (lambda: rules.clean_phone("12"), "phone"),
        (lambda: rules.clean_admin_unit("99"), "admin_unit_code"),
    ]
    for clean, field in cases:
        with pytest.raises(InvalidInput) as refused:
            clean()
        assert refused.value.problems[0].field == field
        assert refused.value.detail.startswith(f"{field}: ")


def test_clean_values_are_normalised() -> None:
    assert rules.clean_national_id("082 185 001234", date(1985, 3, 14), Gender.FEMALE) == (
        "082185001234"
    )
    assert rules.clean_insurance_number("gd4820123456789") == "GD4820123456789"
    assert rules.clean_phone("0912345678") == "+84912345678"
