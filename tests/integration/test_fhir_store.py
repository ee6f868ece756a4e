"""The stored FHIR view: every version validates as R4B, and it follows the domain rows."""

from __future__ import annotations

import json

from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import col, select

from telehealth.db import Database
from telehealth.directory.models import (
    Organization,
    Patient,
    Practitioner,
    PractitionerRole,
    Specialty,
)
from telehealth.fhir.models import FhirResource, FhirResourceVersion, FhirSearchValue
from telehealth.fhir.writethrough import backfill, flush_versions


async def test_every_stored_version_is_valid_r4b(db: Database) -> None:
    async with db.unit_of_work() as session:
        versions = (await session.exec(select(FhirResourceVersion))).all()
    assert {v.resource_type for v in versions} == {
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Patient",
        "HealthcareService",
        "Schedule",
        "Consent",  # the demo patients' consents
    }
    for version in versions:
        resource = json.loads(version.text)
        get_fhir_model_class(version.resource_type).model_validate(resource)
        assert resource["meta"]["versionId"] == str(version.version_id)


async def test_each_domain_row_has_one_current_resource(db: Database) -> None:
    async with db.unit_of_work() as session:
        for model, resource_type in (
            (Organization, "Organization"),
            (Practitioner, "Practitioner"),
            (PractitionerRole, "PractitionerRole"),
            (Patient, "Patient"),
            (Specialty, "HealthcareService"),
        ):
            ids = {str(i) for i in (await session.exec(select(model.id))).all()}
            stored = set(
                (
                    await session.exec(
                        select(FhirResource.resource_id).where(
                            FhirResource.resource_type == resource_type
                        )
                    )
                ).all()
            )
            assert ids == stored, resource_type


async def test_a_change_in_any_unit_of_work_adds_a_version_and_reindexes(db: Database) -> None:
    async with db.unit_of_work() as session:
        patient = (await session.exec(select(Patient).limit(1))).one()
        patient.full_name = "Đặng Thị Bích Ngọc"
        patient.name_folded = "dang thi bich ngoc"
        session.add(patient)
    async with db.unit_of_work() as session:
        head = await session.get(FhirResource, ("Patient", str(patient.id)))
        assert head is not None and head.version_id == 2
        assert json.loads(head.text)["name"][0]["text"] == "Đặng Thị Bích Ngọc"
        words = (
            await session.exec(
                select(FhirSearchValue.value).where(
                    FhirSearchValue.resource_id == str(patient.id), FhirSearchValue.param == "name"
                )
            )
        ).all()
        assert set(words) == {"dang", "thi", "bich", "ngoc"}
        count = (
            await session.exec(
                select(FhirResourceVersion).where(
                    col(FhirResourceVersion.resource_id) == str(patient.id)
                )
            )
        ).all()
        assert len(count) == 2


async def test_a_change_that_leaves_the_resource_as_it_was_adds_no_version(
    db: Database,
) -> None:
    """The history lists changes: a row saved with other domain values that the resource does
    not show, or with its own values, gives its resource no new version."""
    async with db.unit_of_work() as session:
        patient = (await session.exec(select(Patient).limit(1))).one()
        first = await session.get(FhirResource, ("Patient", str(patient.id)))
        assert first is not None
        patient.name_folded = patient.name_folded + " x"  # a column the resource does not show
        session.add(patient)
        assert await flush_versions(session) == []
    async with db.unit_of_work() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.phone = "+84912000111"
        session.add(row)
        written = await flush_versions(session)
        assert [(v.resource_type, v.version_id) for v in written] == [
            ("Patient", first.version_id + 1)
        ]
        row.phone = "+84912000111"  # the same again, in a later flush of the transaction
        assert await flush_versions(session) == []
    async with db.unit_of_work() as session:
        versions = (
            await session.exec(
                select(FhirResourceVersion.version_id).where(
                    col(FhirResourceVersion.resource_type) == "Patient",
                    col(FhirResourceVersion.resource_id) == str(patient.id),
                )
            )
        ).all()
    assert sorted(versions) == [first.version_id, first.version_id + 1]


async def test_a_failed_unit_of_work_leaves_no_version(db: Database) -> None:
    async with db.unit_of_work() as session:
        patient = (await session.exec(select(Patient).limit(1))).one()
    try:
        async with db.unit_of_work() as session:
            row = await session.get(Patient, patient.id)
            assert row is not None
            row.phone = "+84987654321"
            session.add(row)
            await session.flush()
            raise RuntimeError("the use case fails after the flush")
    except RuntimeError:
        pass
    async with db.unit_of_work() as session:
        head = await session.get(FhirResource, ("Patient", str(patient.id)))
    assert head is not None and head.version_id == 1


async def test_backfill_gives_unmapped_rows_a_first_version(db: Database) -> None:
    async with db.unit_of_work() as session:
        patient = (await session.exec(select(Patient).limit(1))).one()
    # As if the row predated the mapping: drop its FHIR view behind the ORM's back.
    async with db.engine.begin() as connection:
        for table in ("fhir_search_value", "fhir_resource_version", "fhir_resource"):
            await connection.exec_driver_sql(
                f"DELETE FROM {table} WHERE resource_id = '{patient.id}'"  # noqa: S608
            )
    async with db.unit_of_work() as session:
        assert await backfill(session) == 1
    async with db.unit_of_work() as session:
        assert await backfill(session) == 0
        head = await session.get(FhirResource, ("Patient", str(patient.id)))
    assert head is not None and head.version_id == 1
