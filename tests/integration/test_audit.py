"""The audit log: every access to patient data leaves a row; administrators query it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt

from telehealth.timeutil import utcnow
from tests.helpers import assert_problem, login, sign_in
from tests.integration.test_patients import NEW_PATIENT

AUDIT = "/api/admin/audit"


def _probe(headers: dict[str, str], request_id: str) -> dict[str, str]:
    return headers | {"User-Agent": "audit-probe/2.0", "X-Request-ID": request_id}


async def test_every_patient_access_is_recorded_with_origin_and_outcome(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa1")
    stranger = await login(client, "bs.xa2")
    created = await client.post(
        "/api/patients", json=NEW_PATIENT, headers=_probe(doctor, "r-create")
    )
    patient = created.json()["id"]
    await client.get(f"/api/patients/{patient}", headers=_probe(doctor, "r-read"))
    await client.get("/api/patients", params={"name": "tuyet"}, headers=_probe(doctor, "r-search"))
    await client.patch(
        f"/api/patients/{patient}", json={"address": "Ấp 3"}, headers=_probe(doctor, "r-update")
    )
    await client.get(f"/api/patients/{patient}", headers=_probe(stranger, "r-denied"))
    bad = await client.patch(
        f"/api/patients/{patient}", json={"phone": "12"}, headers=_probe(doctor, "r-failed")
    )
    assert bad.status_code == 422
    admin = await login(client, "quantri")

    rows = (
        await client.get(AUDIT, params={"patient_id": patient, "limit": 50}, headers=admin)
    ).json()
    by_request = {row["request_id"]: row for row in rows}
    expected = {
        "r-create": ("create", "success"),
        "r-read": ("read", "success"),
        "r-update": ("update", "success"),
        "r-denied": ("read", "denied"),
        "r-failed": ("update", "failed"),
    }
    for request_id, (action, outcome) in expected.items():
        row = by_request[request_id]
        assert (row["action"], row["outcome"]) == (action, outcome), row
        assert row["entity_type"] == "Patient"
        assert row["entity_id"] == patient
        assert row["ip"] == "127.0.0.1"
        assert row["user_agent"] == "audit-probe/2.0"
    assert by_request["r-denied"]["actor_name"] != by_request["r-read"]["actor_name"]
    assert "phone" in by_request["r-failed"]["detail"]

    searches = (
        await client.get(
            AUDIT, params={"action": "search", "entity_type": "Patient"}, headers=admin
        )
    ).json()
    search = next(row for row in searches if row["request_id"] == "r-search")
    assert search["outcome"] == "success"
    assert search["detail"] == "1 of 1 shown"
    assert "tuyet" not in str(search)  # the search words are patient data: not logged


async def test_refused_search_is_recorded_as_denied(client: httpx.AsyncClient) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "his-bvdk-dongthap",
        "client_secret": "demo-client-secret",
        "scope": "system/Organization.rs",
    }
    token = (await client.post("/api/auth/token", data=form)).json()["access_token"]
    refused = await client.get(
        "/api/patients",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "client-refused"},
    )
    assert_problem(refused, 403)
    admin = await login(client, "quantri")
    rows = (
        await client.get(
            AUDIT, params={"outcome": "denied", "actor_id": refused_actor(token)}, headers=admin
        )
    ).json()
    assert [(r["request_id"], r["actor_kind"]) for r in rows] == [("client-refused", "client")]


def refused_actor(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


async def test_audit_filters_by_actor_outcome_and_time(client: httpx.AsyncClient) -> None:
    doctor = await sign_in(client, "bs.xa3")
    me = (await client.get("/api/auth/me", headers=doctor)).json()
    found = (await client.get("/api/patients", headers=doctor)).json()["items"]
    for patient in found[:3]:
        await client.get(f"/api/patients/{patient['id']}", headers=doctor)
    admin = await login(client, "quantri")

    mine = (await client.get(AUDIT, params={"actor_id": me["id"]}, headers=admin)).json()
    assert {r["actor_id"] for r in mine} == {me["id"]}
    assert sorted(r["action"] for r in mine) == ["login", "read", "read", "read", "search"]
    reads = (
        await client.get(
            AUDIT,
            params={"actor_id": me["id"], "action": "read", "outcome": "success"},
            headers=admin,
        )
    ).json()
    assert len(reads) == 3
    times = [r["recorded_at"] for r in mine]
    assert times == sorted(times, reverse=True)

    future = (utcnow() + timedelta(hours=1)).isoformat()
    past = (utcnow() - timedelta(hours=1)).isoformat()
    assert (await client.get(AUDIT, params={"since": future}, headers=admin)).json() == []
    assert (await client.get(AUDIT, params={"until": past}, headers=admin)).json() == []
    window = (
        await client.get(
            AUDIT, params={"since": past, "until": future, "actor_id": me["id"]}, headers=admin
        )
    ).json()
    assert len(window) == 5
    page = (
        await client.get(
            AUDIT, params={"actor_id": me["id"], "limit": 2, "offset": 4}, headers=admin
        )
    ).json()
    assert len(page) == 1
    assert_problem(
        await client.get(AUDIT, params={"outcome": "maybe"}, headers=admin), 400, field="outcome"
    )


async def test_only_administrators_read_the_audit(client: httpx.AsyncClient) -> None:
    for username in ("bs.xa1", "bs.tim", "dieuphoi"):
        headers = await login(client, username)
        assert_problem(await client.get(AUDIT, headers=headers), 403)
