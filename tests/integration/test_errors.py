"""Error shapes: every refusal is problem+json a person can act on; never a 500 or a traceback."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest

from telehealth.settings import Settings
from tests.conftest import PG_ADMIN_DSN
from tests.helpers import assert_problem, login

ORG = "00000000-0000-4000-8000-000000000000"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    for path in ("/api/nothing-here", "/nowhere", f"/api/patients/{ORG}/extra"):
        assert_problem(await client.get(path, headers=headers), 404)
    assert_problem(await client.get("/api/nothing-here"), 404)


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    response = await client.delete("/api/patients", headers=headers)
    assert_problem(response, 405)


async def test_no_token_is_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    for path in ("/api/patients", "/api/organizations", "/api/admin/audit", "/api/auth/me"):
        response = await client.get(path)
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"] == 'Bearer realm="telehealth"'
        assert "Authorization: Bearer" in str(body["detail"])


async def test_public_paths_need_no_token(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1") | {"Content-Type": "application/json"}
    for body in (
        b"{not json",
        b"",
        b"[1, 2",
        '{"full_name": "\ud800"}'.encode("utf-8", "surrogatepass"),
    ):
        response = await client.post("/api/patients", content=body, headers=headers)
        assert_problem(response, 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gender": "female", "birth_date": "1985-03-14"}, "full_name"),
        ({"full_name": "A", "gender": "female", "birth_date": "not-a-date"}, "birth_date"),
        ({"full_name": "A", "gender": "yes", "birth_date": "1985-03-14"}, "gender"),
        ({"full_name": 42, "gender": "female", "birth_date": "1985-03-14"}, "full_name"),
        ({"full_name": "A", "gender": "female", "birth_date": "1985-03-14", "role": "x"}, "role"),
        (
            {
                "full_name": "A",
                "gender": "female",
                "birth_date": "1985-03-14",
                "organization_id": "x",
            },
            "organization_id",
        ),
        ({"full_name": "A" * 121, "gender": "female", "birth_date": "1985-03-14"}, "full_name"),
    ],
    ids=["missing", "bad-date", "bad-enum", "wrong-type", "extra-field", "bad-uuid", "too-long"],
)
async def test_invalid_fields_are_400_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    headers = await login(client, "bs.xa1")
    response = await client.post("/api/patients", json=body, headers=headers)
    problem = assert_problem(response, 400, field=field)
    assert field in str(problem["detail"])


async def test_extra_fields_named_like_internals_are_400(client: httpx.AsyncClient) -> None:
    """Field names that happen to equal a dependency's name must not confuse the framework."""
    headers = await login(client, "bs.xa1")
    for name in ("session", "settings", "caller", "db", "data"):
        body = {"full_name": "A", "gender": "female", "birth_date": "1985-03-14", name: 1}
        response = await client.post("/api/patients", json=body, headers=headers)
        assert_problem(response, 400, field=name)


async def test_json_that_is_not_an_object_is_400(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    for body in ([], "text", 5, None):
        assert_problem(await client.post("/api/patients", json=body, headers=headers), 400)


async def test_bad_query_parameters_are_400_naming_them(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    cases = {
        "limit": {"limit": "0"},
        "offset": {"offset": "-1"},
        "birth_date": {"birth_date": "yesterday"},
        "organization_id": {"organization_id": "nope"},
        "name": {"name": "x" * 500},
    }
    for field, params in cases.items():
        response = await client.get("/api/patients", params=params, headers=headers)
        assert_problem(response, 400, field=field)


async def test_text_that_cannot_be_stored_is_a_4xx(client: httpx.AsyncClient) -> None:
    """NUL characters are legal JSON but PostgreSQL text cannot hold them."""
    headers = await login(client, "bs.xa1")
    registered = await client.post(
        "/api/patients",
        json={"full_name": "Nguyễn\u0000An", "gender": "male", "birth_date": "1990-01-01"},
        headers=headers,
    )
    assert_problem(registered, 400, field="full_name")
    searched = await client.get("/api/patients", params={"name": "an\u0000"}, headers=headers)
    assert_problem(searched, 422, field="name")
    by_card = await client.get("/api/patients", params={"identifier": "\u0000"}, headers=headers)
    assert by_card.status_code in (200, 422), by_card.text
    refused = await client.post("/api/auth/login", json={"username": "a\u0000", "password": "x"})
    assert refused.status_code in (401, 422), refused.text


async def test_extreme_dates_are_refused_cleanly(client: httpx.AsyncClient) -> None:
    admin = await login(client, "quantri")
    for since in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-10:00"):
        response = await client.get("/api/admin/audit", params={"since": since}, headers=admin)
        assert_problem(response, 422, field="since")
    doctor = await login(client, "bs.xa1")
    old = await client.post(
        "/api/patients",
        json={"full_name": "Cụ Già", "gender": "male", "birth_date": "0001-01-01"},
        headers=doctor,
    )
    assert_problem(old, 422, field="birth_date")


async def test_errors_carry_no_traceback(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    response = await client.post(
        "/api/patients", content=b"{", headers=headers | {"Content-Type": "application/json"}
    )
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


async def test_a_dropped_database_connection_is_a_503_then_recovers(
    backend: str, client: httpx.AsyncClient, settings: Settings
) -> None:
    """Pooled connections are not pinged; when the server drops them, a request in flight gets
    a 503 asking for a retry (never a 500), and the pool replaces them for the next one."""
    if backend != "postgresql":
        pytest.skip("connections are dropped by the PostgreSQL server")
    headers = await login(client, "bs.xa1")
    assert (await client.get("/api/patients", headers=headers)).status_code == 200
    name = settings.resolved_database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            name,
        )
    finally:
        await admin.close()
    assert dropped >= 1
    statuses = []
    for _ in range(3):
        response = await client.get("/api/patients", headers=headers)
        if response.status_code != 200:
            assert_problem(response, 503)
            assert response.headers["retry-after"] == "1"
        statuses.append(response.status_code)
    assert statuses[-1] == 200, statuses


async def test_every_answer_carries_a_request_id(client: httpx.AsyncClient) -> None:
    """Sent back as given when it is a sane token, otherwise a fresh one, on success and
    refusal alike, so a person reporting a problem can quote it."""
    echoed = await client.get("/health", headers={"X-Request-ID": "clinic-42.a_b"})
    assert echoed.headers["x-request-id"] == "clinic-42.a_b"
    assert echoed.headers.get_list("x-request-id") == ["clinic-42.a_b"]
    for sent in ({}, {"X-Request-ID": "no spaces allowed"}, {"X-Request-ID": "x" * 41}):
        answer = await client.get("/api/patients", headers=sent)
        assert answer.status_code == 401
        generated = answer.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", generated), generated


DEEP_ARRAY = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["arrays", "objects"])
async def test_deeply_nested_json_is_400_not_500(client: httpx.AsyncClient, body: bytes) -> None:
    """Python's parsers recurse per level: a few kilobytes nested a thousand deep are refused
    as bad input, before and after logging in, whatever the content type claims."""
    for content_type in ("application/json", "text/plain"):
        for path in ("/api/auth/login", "/api/auth/refresh"):
            response = await client.post(path, content=body, headers={"Content-Type": content_type})
            assert "nests deeper" in str(assert_problem(response, 400)["detail"])
    headers = await login(client, "bs.xa1")
    registered = len((await client.get("/api/patients", headers=headers)).json())
    response = await client.post(
        "/api/patients", content=body, headers=headers | {"Content-Type": "application/json"}
    )
    assert "nests deeper" in str(assert_problem(response, 400)["detail"])
    response = await client.post(
        "/fhir/Patient", content=body, headers=headers | {"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "nests deeper" in outcome["issue"][0]["diagnostics"]
    assert len((await client.get("/api/patients", headers=headers)).json()) == registered


ADMIN_WRITES = [
    ("POST", "/api/admin/accounts"),
    ("PATCH", f"/api/admin/accounts/{ORG}"),
    ("POST", "/api/admin/clients"),
    ("POST", "/api/admin/webhooks"),
    ("POST", "/api/organizations"),
    ("PATCH", f"/api/organizations/{ORG}"),
    ("POST", "/api/practitioners"),
    ("PATCH", f"/api/practitioners/{ORG}"),
    ("POST", "/api/practitioner-roles"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_WRITES)
async def test_role_is_checked_before_the_body(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """A doctor posting nonsense to an administrator's endpoint is refused for who they are
    (403), not told what the body lacks; the administrator is told what the body lacks."""
    nonsense = {"nonsense": True}
    doctor = await login(client, "bs.xa1")
    refused = await client.request(method, path, json=nonsense, headers=doctor)
    assert "roles: administrator" in str(assert_problem(refused, 403)["detail"])
    assert "errors" not in refused.json()
    admin = await login(client, "quantri")
    assert_problem(await client.request(method, path, json=nonsense, headers=admin), 400)
