"""The FHIR face read-side: discovery, read/vread/history, search, access, as clients use it."""

from __future__ import annotations

import unicodedata
import uuid

import httpx

from telehealth.db import Database
from telehealth.directory.models import PractitionerRole
from tests.e2e.fhir_support import (
    NATIONAL_ID,
    PROVIDER_CODE,
    assert_outcome,
    client_headers,
    entries,
    fhir_json,
    valid,
)
from tests.helpers import login


def strip_marks(text: str) -> str:
    """What a clerk types without a Vietnamese keyboard: no tone marks, đ as d."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


async def test_discovery_is_public_and_lists_what_works(client: httpx.AsyncClient) -> None:
    statement = fhir_json(await client.get("/fhir/metadata"))
    assert statement["fhirVersion"].startswith("4.")
    rest = statement["rest"][0]
    oauth = rest["security"]["extension"][0]
    assert oauth["url"].endswith("oauth-uris")
    token = oauth["extension"][0]["valueUri"]
    assert token == f"{client.base_url}/api/auth/token"
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {p["name"] for p in patient["searchParam"]} >= {
        "identifier",
        "name",
        "birthdate",
        "organization",
    }
    assert {"create", "update", "read", "vread"} <= {i["code"] for i in patient["interaction"]}
    role = next(r for r in rest["resource"] if r["type"] == "PractitionerRole")
    assert set(role["searchInclude"]) == {
        "PractitionerRole:practitioner",
        "PractitionerRole:organization",
    }
    smart = (await client.get("/fhir/.well-known/smart-configuration")).json()
    assert smart["token_endpoint"] == token
    assert "client_credentials" in smart["grant_types_supported"]


async def test_read_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.get("/fhir/Organization"), 401)


async def test_read_vread_etag_and_not_modified(client: httpx.AsyncClient) -> None:
    headers = await client_headers(client)
    found = fhir_json(
        await client.get(
            "/fhir/Organization", params={"identifier": f"{PROVIDER_CODE}|82001"}, headers=headers
        )
    )
    [org] = entries(found)
    assert org["name"] == "Bệnh viện Đa khoa tỉnh Đồng Tháp"
    response = await client.get(f"/fhir/Organization/{org['id']}", headers=headers)
    assert fhir_json(response) == org
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith("GMT")
    cached = await client.get(
        f"/fhir/Organization/{org['id']}", headers={**headers, "If-None-Match": 'W/"1"'}
    )
    assert cached.status_code == 304
    assert (
        fhir_json(await client.get(f"/fhir/Organization/{org['id']}/_history/1", headers=headers))
        == org
    )
    assert_outcome(
        await client.get(f"/fhir/Organization/{org['id']}/_history/9", headers=headers), 404
    )
    assert_outcome(await client.get("/fhir/Organization/no-such-id", headers=headers), 404)
    assert_outcome(await client.get("/fhir/Spaceship/1", headers=headers), 404, "not served")


async def test_patient_search_parameters(client: httpx.AsyncClient) -> None:
    headers = await client_headers(client)
    everyone = entries(
        fhir_json(await client.get("/fhir/Patient", params={"_count": "200"}, headers=headers))
    )
    assert len(everyone) >= 40
    sample = next(
        p
        for p in everyone
        if any(ord(c) > 127 for c in p["name"][0]["text"])
        and any(i["system"] == NATIONAL_ID for i in p.get("identifier", []))
    )
    ascii_name = strip_marks(sample["name"][0]["text"]).lower()
    by_name = entries(
        fhir_json(await client.get("/fhir/Patient", params={"name": ascii_name}, headers=headers))
    )
    assert sample["id"] in [p["id"] for p in by_name]
    national = next(i["value"] for i in sample["identifier"] if i["system"] == NATIONAL_ID)
    for value in (f"{NATIONAL_ID}|{national}", national):
        [hit] = entries(
            fhir_json(
                await client.get("/fhir/Patient", params={"identifier": value}, headers=headers)
            )
        )
        assert hit["id"] == sample["id"]
    born = entries(
        fhir_json(
            await client.get(
                "/fhir/Patient", params={"birthdate": sample["birthDate"]}, headers=headers
            )
        )
    )
    assert sample["id"] in [p["id"] for p in born] and all(
        p["birthDate"] == sample["birthDate"] for p in born
    )
    # Compare against the youngest patient's year, so that someone is always born before it.
    year = max(p["birthDate"] for p in everyone)[:4]
    older = entries(
        fhir_json(
            await client.get(
                "/fhir/Patient", params={"birthdate": f"lt{year}", "_count": "200"}, headers=headers
            )
        )
    )
    assert older and all(p["birthDate"] < year for p in older)
    organization = sample["managingOrganization"]["reference"]
    at_facility = entries(
        fhir_json(
            await client.get(
                "/fhir/Patient",
                params={"organization": organization, "_count": "200"},
                headers=headers,
            )
        )
    )
    assert sample["id"] in [p["id"] for p in at_facility]
    assert all(p["managingOrganization"]["reference"] == organization for p in at_facility)
    counted = fhir_json(
        await client.get(
            "/fhir/Patient",
            params={"organization": organization, "_summary": "count"},
            headers=headers,
        )
    )
    assert counted["total"] == len(at_facility)
    assert counted.get("entry", []) == []


async def test_paging_follows_next_links_and_count_is_clamped(client: httpx.AsyncClient) -> None:
    headers = await client_headers(client)
    seen: list[str] = []
    url: str | None = "/fhir/Patient?_count=7&_total=accurate"
    total = None
    while url:
        page = fhir_json(await client.get(url, headers=headers))
        total = page["total"]
        batch = entries(page)
        assert len(batch) <= 7
        seen.extend(p["id"] for p in batch)
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == total
    huge = fhir_json(await client.get("/fhir/Patient", params={"_count": "5000"}, headers=headers))
    assert len(entries(huge)) <= 200
    oldest_first = entries(
        fhir_json(
            await client.get(
                "/fhir/Patient", params={"_sort": "_lastUpdated", "_count": "200"}, headers=headers
            )
        )
    )
    stamps = [p["meta"]["lastUpdated"] for p in oldest_first]
    assert stamps == sorted(stamps)
    later = fhir_json(
        await client.get("/fhir/Patient", params={"_lastUpdated": "gt2100-01-01"}, headers=headers)
    )
    assert entries(later) == []


async def test_include_and_revinclude(client: httpx.AsyncClient) -> None:
    headers = await client_headers(client)
    [org] = entries(
        fhir_json(
            await client.get("/fhir/Organization", params={"identifier": "82001"}, headers=headers)
        )
    )
    bundle = fhir_json(
        await client.get(
            "/fhir/PractitionerRole",
            params=[
                ("organization", f"Organization/{org['id']}"),
                ("_include", "PractitionerRole:practitioner"),
                ("_include", "PractitionerRole:organization"),
            ],
            headers=headers,
        )
    )
    roles = entries(bundle)
    included = entries(bundle, "include")
    assert roles and all(
        r["organization"]["reference"] == f"Organization/{org['id']}" for r in roles
    )
    assert {f"Practitioner/{p['id']}" for p in included if p["resourceType"] == "Practitioner"} == {
        r["practitioner"]["reference"] for r in roles
    }
    assert [o["id"] for o in included if o["resourceType"] == "Organization"] == [org["id"]]
    [service] = entries(
        fhir_json(
            await client.get(
                "/fhir/HealthcareService",
                params={"specialty": "394579002"},
                headers=await login(client, "bs.xa1"),
            )
        )
    )
    assert service["name"] == "Tư vấn từ xa Tim mạch"
    cardiology = entries(
        fhir_json(
            await client.get(
                "/fhir/PractitionerRole",
                params={"specialty": "http://snomed.info/sct|394579002"},
                headers=headers,
            )
        )
    )
    assert len(cardiology) == 1
    children = fhir_json(
        await client.get(
            "/fhir/Organization",
            params={"partof": org["id"], "_include": "Organization:partof"},
            headers=headers,
        )
    )
    assert entries(children) and [o["id"] for o in entries(children, "include")] == [org["id"]]
    with_roles = fhir_json(
        await client.get(
            "/fhir/Practitioner",
            params={
                "_id": roles[0]["practitioner"]["reference"].split("/")[1],
                "_revinclude": "PractitionerRole:practitioner",
            },
            headers=headers,
        )
    )
    assert roles[0]["id"] in [r["id"] for r in entries(with_roles, "include")]
    communes = entries(
        fhir_json(
            await client.get("/fhir/Organization", params={"type": "commune"}, headers=headers)
        )
    )
    assert len(communes) == 6


async def test_bad_searches_get_an_operation_outcome(client: httpx.AsyncClient) -> None:
    headers = await client_headers(client)
    assert_outcome(
        await client.get("/fhir/Patient", params={"nmae": "an"}, headers=headers), 400, "nmae"
    )
    assert_outcome(
        await client.get("/fhir/Patient", params={"birthdate": "yesterday"}, headers=headers), 400
    )
    assert_outcome(
        await client.get("/fhir/Patient", params={"_count": "many"}, headers=headers), 400
    )
    assert_outcome(
        await client.get("/fhir/Patient", params={"_include": "Patient:link"}, headers=headers), 400
    )
    ok = await client.get(
        "/fhir/Patient", params={"_format": "json", "_count": "1"}, headers=headers
    )
    assert ok.status_code == 200


async def test_scopes_limit_system_clients(client: httpx.AsyncClient) -> None:
    narrow = await client_headers(client, scope="system/Organization.rs")
    assert (await client.get("/fhir/Organization", headers=narrow)).status_code == 200
    assert_outcome(await client.get("/fhir/Patient", headers=narrow), 403, "system/Patient")
    assert_outcome(await client.get("/fhir/Practitioner", headers=narrow), 403)
    assert_outcome(await client.get("/fhir/PractitionerRole", headers=narrow), 403)


async def test_people_see_the_patients_of_their_facility_only(client: httpx.AsyncClient) -> None:
    system = await client_headers(client)
    xa1 = await login(client, "bs.xa1")
    xa2 = await login(client, "bs.xa2")
    mine = entries(
        fhir_json(await client.get("/fhir/Patient", params={"_count": "200"}, headers=xa1))
    )
    theirs = entries(
        fhir_json(await client.get("/fhir/Patient", params={"_count": "200"}, headers=xa2))
    )
    assert mine and theirs
    own_orgs = {p["managingOrganization"]["reference"] for p in mine}
    assert len(own_orgs) == 1
    assert not {p["id"] for p in mine} & {p["id"] for p in theirs}
    assert (
        fhir_json(await client.get(f"/fhir/Patient/{mine[0]['id']}", headers=xa1))["id"]
        == mine[0]["id"]
    )
    assert_outcome(await client.get(f"/fhir/Patient/{mine[0]['id']}", headers=xa2), 404)
    assert_outcome(await client.get(f"/fhir/Patient/{mine[0]['id']}/_history", headers=xa2), 404)
    specialist = await login(client, "bs.tim")
    assert entries(fhir_json(await client.get("/fhir/Patient", headers=specialist))) == []
    everyone = fhir_json(
        await client.get("/fhir/Patient", params={"_summary": "count"}, headers=system)
    )
    assert everyone["total"] > len(mine)
    # Directory resources are open to every signed-in person.
    assert entries(
        fhir_json(await client.get("/fhir/Practitioner", params={"name": "tran quoc"}, headers=xa2))
    )


async def test_audit_log_as_audit_events(client: httpx.AsyncClient) -> None:
    xa1 = await login(client, "bs.xa1")
    [patient] = entries(
        fhir_json(await client.get("/fhir/Patient", params={"_count": "1"}, headers=xa1))
    )
    await client.get(f"/fhir/Patient/{patient['id']}", headers=xa1)
    admin = await login(client, "quantri")
    bundle = fhir_json(
        await client.get(
            "/fhir/AuditEvent", params={"patient": f"Patient/{patient['id']}"}, headers=admin
        )
    )
    events = [e["resource"] for e in bundle["entry"]]
    assert events and all(valid(e)["outcome"] == "0" for e in events)
    assert any(e["subtype"][0]["code"] == "read" for e in events)
    one = fhir_json(await client.get(f"/fhir/AuditEvent/{events[0]['id']}", headers=admin))
    assert one["id"] == events[0]["id"]
    assert_outcome(await client.get("/fhir/AuditEvent", headers=xa1), 403)
    assert_outcome(await client.get("/fhir/AuditEvent", headers=await client_headers(client)), 403)


async def test_a_deleted_row_is_gone_but_its_history_is_kept(
    client: httpx.AsyncClient, db: Database
) -> None:
    headers = await login(client, "bs.xa1")
    [role] = entries(
        fhir_json(
            await client.get("/fhir/PractitionerRole", params={"_count": "1"}, headers=headers)
        )
    )
    async with db.unit_of_work() as session:
        row = await session.get(PractitionerRole, uuid.UUID(role["id"]))
        await session.delete(row)
    assert_outcome(await client.get(f"/fhir/PractitionerRole/{role['id']}", headers=headers), 410)
    history = fhir_json(
        await client.get(f"/fhir/PractitionerRole/{role['id']}/_history", headers=headers)
    )
    assert [e["response"]["status"] for e in history["entry"]] == ["410", "200"]
    assert history["entry"][1]["resource"] == role
    old = await client.get(f"/fhir/PractitionerRole/{role['id']}/_history/1", headers=headers)
    assert fhir_json(old) == role
    remaining = entries(
        fhir_json(
            await client.get("/fhir/PractitionerRole", params={"_count": "200"}, headers=headers)
        )
    )
    assert role["id"] not in [r["id"] for r in remaining]


async def test_search_by_form_post_and_type_history(client: httpx.AsyncClient) -> None:
    headers = await client_headers(client)
    by_form = fhir_json(
        await client.post(
            "/fhir/Organization/_search", data={"identifier": "82001"}, headers=headers
        )
    )
    [org] = entries(by_form)
    assert org["identifier"][0]["value"] == "82001"
    history = fhir_json(
        await client.get("/fhir/Organization/_history", params={"_count": "3"}, headers=headers)
    )
    assert history["type"] == "history" and len(history["entry"]) == 3
    assert any(link["relation"] == "next" for link in history["link"])
    none_since = fhir_json(
        await client.get(
            "/fhir/Organization/_history",
            params={"_since": "2100-01-01T00:00:00Z"},
            headers=headers,
        )
    )
    assert none_since.get("entry", []) == []
    xa1 = await login(client, "bs.xa1")
    assert_outcome(await client.get("/fhir/Patient/_history", headers=xa1), 400)
