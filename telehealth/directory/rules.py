"""Pure rules of the directory: the facility hierarchy, identifiers and what people type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from telehealth.directory.identifiers import (
    IdentifierError,
    check_admin_unit,
    check_bhyt,
    check_cccd,
    check_phone,
    clean_name,
    fold_name,
)
from telehealth.directory.models import FacilityLevel, Gender
from telehealth.errors import InvalidInput

_RANK = {
    FacilityLevel.CENTRAL: 0,
    FacilityLevel.PROVINCIAL: 1,
    FacilityLevel.DISTRICT: 2,
    FacilityLevel.COMMUNE: 3,
}
OLDEST_BIRTH_DATE = date(1890, 1, 1)


def check_parent_level(child: FacilityLevel, parent: FacilityLevel) -> None:
    """A facility sits under one of a higher level (a commune station under a district
    hospital or, where districts were merged away, directly under a provincial one)."""
    if _RANK[parent] >= _RANK[child]:
        raise InvalidInput.for_field(
            "parent_id", f"a {child.value} facility cannot sit under a {parent.value} facility"
        )


def check_child_levels(level: FacilityLevel, child_levels: set[FacilityLevel]) -> None:
    for child in child_levels:
        if _RANK[child] <= _RANK[level]:
            raise InvalidInput.for_field(
                "level",
                f"the facility has {child.value} facilities under it; it must stay above them",
            )


def _field(field: str, check: Callable[..., str], *args: object, **kwargs: object) -> str:
    try:
        return check(*args, **kwargs)
    except IdentifierError as exc:
        raise InvalidInput.for_field(field, str(exc)) from exc


def clean_national_id(value: str, birth_date: date, gender: Gender) -> str:
    return _field("national_id", check_cccd, value, birth_date=birth_date, gender=gender)


def clean_insurance_number(value: str) -> str:
    return _field("insurance_number", check_bhyt, value)


def clean_phone(value: str) -> str:
    return _field("phone", check_phone, value)


def clean_admin_unit(value: str) -> str:
    return _field("admin_unit_code", check_admin_unit, value)


def check_birth_date(value: date, today: date) -> None:
    if value > today:
        raise InvalidInput.for_field("birth_date", "is in the future")
    if value < OLDEST_BIRTH_DATE:
        raise InvalidInput.for_field("birth_date", f"is before {OLDEST_BIRTH_DATE.isoformat()}")


# Optional identifiers and contact fields: left blank means "none" (never a blank duplicate).
BLANK_MEANS_NONE = ("national_id", "insurance_number", "phone", "admin_unit_code")
_CLEANERS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("insurance_number", clean_insurance_number),
    ("phone", clean_phone),
    ("admin_unit_code", clean_admin_unit),
)


def clean_entries(values: dict[str, Any], *, name_field: str) -> dict[str, Any]:
    """What a person typed, in the form it is stored: blanks cleared, phone numbers, BHYT and
    administrative unit codes in canonical form, the name tidied beside its diacritic-free
    twin (``name_folded``) for search. Only the fields present are touched, so a partial
    update passes through as partial. The CCCD needs the birth date and gender to check, and
    is cleaned by the caller."""
    cleaned = dict(values)
    for field in BLANK_MEANS_NONE:
        if field in cleaned and not (cleaned[field] or "").strip():
            cleaned[field] = None
    for field, clean in _CLEANERS:
        if cleaned.get(field):
            cleaned[field] = clean(cleaned[field])
    if name_field in cleaned:
        cleaned["name_folded"] = fold_name(cleaned[name_field])
        cleaned[name_field] = clean_name(cleaned[name_field])
    return cleaned
