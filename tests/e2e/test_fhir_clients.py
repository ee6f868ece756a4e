"""Real third-party FHIR clients from PyPI against the running server: fhirpy (async and sync)
and SMART on FHIR's fhirclient. Sync clients run in a thread: the server shares the loop."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fhirclient import client as smart_client
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.organization import Organization as SmartOrganization
from fhirclient.models.patient import Patient as SmartPatient
from fhirpy import AsyncFHIRClient, SyncFHIRClient

from telehealth.db import Database
from tests.conftest import RunningServer
from tests.e2e.fhir_support import (
    NATIONAL_ID,
    PROVIDER_CODE,
    WRITER_ID,
    WRITER_SECRET,
    add_writer_client,
    client_headers,
    valid,
)


def _patient(organization: str, national_id: str, given: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NATIONAL_ID, "value": national_id}],
        "name": [{"family": "Trần", "given": given}],
        "gender": "male",
        "birthDate": "1990-07-02",
        "managingOrganization": {"reference": organization},
    }


async def _writer(client: httpx.AsyncClient, db: Database) -> str:
    await add_writer_client(db)
    headers = await client_headers(client, WRITER_ID, WRITER_SECRET)
    return headers["Authorization"]


async def test_fhirpy_async_crud_search_paging_conditional_transaction(
    server: RunningServer, client: httpx.AsyncClient, db: Database
) -> None:
    fhir = AsyncFHIRClient(f"{server.url}/fhir", authorization=await _writer(client, db))
    station = await fhir.resources("Organization").search(identifier=f"{PROVIDER_CODE}|82101").get()
    org = f"Organization/{station['id']}"

    created = fhir.resource("Patient", **_patient(org, "082090001111", ["Văn", "Hùng"]))
    await created.save()
    assert created["id"] and created["meta"]["versionId"] == "1"
    fetched = await fhir.resources("Patient").search(_id=created["id"]).get()
    assert fetched["name"][0]["text"] == "Trần Văn Hùng"
    valid(fetched.serialize())

    fetched["telecom"] = [{"system": "phone", "value": "0912345678"}]
    await fetched.save()
    assert fetched["meta"]["versionId"] == "2"
    patched = await fhir.patch("Patient", created["id"], birthDate="1990-07-03")
    assert patched["birthDate"] == "1990-07-03" and patched["meta"]["versionId"] == "3"

    found = await fhir.resources("Patient").search(name="tran van hung").fetch()
    assert [p["id"] for p in found] == [created["id"]]
    everyone = await fhir.resources("Patient").limit(9).fetch_all()
    assert (
        len(everyone) == len({p["id"] for p in everyone}) == await fhir.resources("Patient").count()
    )
    assert len(everyone) > 9

    same, was_created = (
        await fhir.resources("Patient")
        .search(identifier=f"{NATIONAL_ID}|082090001111")
        .get_or_create(fhir.resource("Patient", **_patient(org, "082090001111", ["Văn", "Hùng"])))
    )
    assert not was_created and same["id"] == created["id"]
    other, was_created = (
        await fhir.resources("Patient")
        .search(identifier=f"{NATIONAL_ID}|082090002222")
        .get_or_create(fhir.resource("Patient", **_patient(org, "082090002222", ["Minh"])))
    )
    assert was_created and other["id"] != created["id"]

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _patient(org, nid, ["Quốc"]),
                "request": {"method": "POST", "url": "Patient"},
            }
            for nid in ("082090003333", "082090004444")
        ],
    }
    answer = await fhir.execute("", method="post", data=bundle)
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created", "201 Created"]
    valid(answer)
    roles = (
        await fhir.resources("PractitionerRole")
        .search(organization=station["partOf"]["reference"])
        .include("PractitionerRole", "practitioner")
        .fetch_raw()
    )
    valid(roles.serialize() if hasattr(roles, "serialize") else dict(roles))


def _sync_session(base: str, authorization: str) -> dict[str, Any]:
    fhir = SyncFHIRClient(base, authorization=authorization)
    station = fhir.resources("Organization").search(identifier="82102").get()
    org = f"Organization/{station['id']}"
    created = fhir.resource("Patient", **_patient(org, "082090005555", ["Thanh", "Tâm"]))
    created.save()
    created["gender"] = "female"
    created["identifier"] = [{"system": NATIONAL_ID, "value": "082190005555"}]
    created.save()
    pages = list(fhir.resources("Patient").search(organization=org).limit(2))
    again, was_created = (
        fhir.resources("Patient")
        .search(identifier=f"{NATIONAL_ID}|082190005555")
        .get_or_create(fhir.resource("Patient", **_patient(org, "082190005555", ["Thanh", "Tâm"])))
    )
    answer = fhir.execute(
        "",
        method="post",
        data={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "GET", "url": f"Patient/{created['id']}"}}],
        },
    )
    return {
        "created": created.serialize(),
        "page_ids": [p["id"] for p in pages],
        "again": again["id"],
        "was_created": was_created,
        "answer": answer,
        "org": org,
    }


async def test_fhirpy_sync_client(
    server: RunningServer, client: httpx.AsyncClient, db: Database
) -> None:
    outcome = await asyncio.to_thread(
        _sync_session, f"{server.url}/fhir", await _writer(client, db)
    )
    created = outcome["created"]
    assert created["meta"]["versionId"] == "2" and created["gender"] == "female"
    assert (
        created["id"] in outcome["page_ids"]
        and len(outcome["page_ids"]) == len(set(outcome["page_ids"])) > 2
    )
    assert outcome["again"] == created["id"] and not outcome["was_created"]
    assert outcome["answer"]["entry"][0]["resource"]["id"] == created["id"]


def _smart_session(
    base: str, authorization: str, patient_id: str, organization_id: str
) -> tuple[Any, ...]:
    smart = smart_client.FHIRClient(settings={"app_id": "telehealth-tests", "api_base": base + "/"})
    capability = smart.server.capabilityStatement  # parsed strictly by fhirclient's models
    smart.server.session.headers["Authorization"] = authorization
    patient = SmartPatient.read(patient_id, smart.server)
    organization = SmartOrganization.read(organization_id, smart.server)
    return capability, patient, organization


async def test_fhirclient_parses_metadata_and_reads(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    headers = await client_headers(client)
    patients = (await client.get("/fhir/Patient", params={"_count": "1"}, headers=headers)).json()
    patient = patients["entry"][0]["resource"]
    organization_id = patient["managingOrganization"]["reference"].split("/")[1]
    capability, read_patient, organization = await asyncio.to_thread(
        _smart_session,
        f"{server.url}/fhir",
        headers["Authorization"],
        patient["id"],
        organization_id,
    )
    assert isinstance(capability, CapabilityStatement)
    assert (
        capability.rest[0].security.extension[0].extension[0].valueUri.endswith("/api/auth/token")
    )
    assert read_patient.id == patient["id"]
    assert read_patient.name[0].text == patient["name"][0]["text"]
    assert read_patient.birthDate.isostring == patient["birthDate"]
    assert organization.identifier[0].system == PROVIDER_CODE
