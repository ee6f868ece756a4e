"""Searches by one value read their page off the index (driven); they must page exactly as
the general path (criteria, then sort) does."""

from __future__ import annotations

import json

from sqlmodel import select

from telehealth.db import Database
from telehealth.fhir.models import FhirResource
from telehealth.fhir.search import SearchQuery, parse_search, run_search


async def _pages(db: Database, query: SearchQuery) -> list[str]:
    """Every match, a page of seven at a time."""
    ids: list[str] = []
    async with db.unit_of_work() as session:
        while True:
            result = await run_search(session, query)
            ids += [m.resource_id for m in result.matches]
            if not result.has_next:
                return ids
            query.offset += query.count


async def _both_ways(db: Database, resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    driven = parse_search(resource_type, [*params, ("_count", "7")])
    assert driven.driver is not None, params
    general = parse_search(resource_type, [*params, ("_count", "7")])
    general.driver = None
    ids = await _pages(db, driven)
    assert ids == await _pages(db, general), params
    assert len(ids) == len(set(ids)), params
    return ids


async def test_a_search_by_one_code_pages_as_the_general_path(db: Database) -> None:
    women = await _both_ways(db, "Patient", [("gender", "female")])
    assert len(women) > 7
    assert await _both_ways(db, "Practitioner", [("active", "true")])
    async with db.unit_of_work() as session:
        patient = json.loads(
            (
                await session.exec(
                    select(FhirResource.text).where(FhirResource.resource_type == "Patient")
                )
            ).first()
            or "{}"
        )
    identifier = patient["identifier"][0]
    assert await _both_ways(
        db, "Patient", [("identifier", f"{identifier['system']}|{identifier['value']}")]
    ) == [patient["id"]]


def test_only_codes_with_one_index_entry_per_resource_drive() -> None:
    """A code without its system may sit under two systems of one resource: not driven."""
    assert parse_search("Patient", [("identifier", "082185001234")]).driver is None
    assert parse_search("Organization", [("type", "prov")]).driver is None
    assert parse_search("Appointment", [("status", "booked,arrived")]).driver is None
    assert parse_search("Appointment", [("status", "booked"), ("date", "ge2026")]).driver is None
    booked = parse_search("Appointment", [("status", "booked")]).driver
    assert booked is not None and (booked.value, booked.system) == ("booked", None)
