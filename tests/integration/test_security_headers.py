"""Every answer carries the security headers: pages, the API, FHIR, errors and static files."""

from __future__ import annotations

import httpx

from tests.helpers import login

ROOM = "00000000-0000-4000-8000-000000000001"


def _policy(response: httpx.Response) -> dict[str, str]:
    directives = response.headers["content-security-policy"].split(";")
    return {name: value for name, _, value in (d.strip().partition(" ") for d in directives)}


def _assert_secured(response: httpx.Response) -> None:
    policy = _policy(response)
    assert policy["script-src"] == "'self'", response.request.url
    assert "unsafe-inline" not in policy["style-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    permissions = response.headers["permissions-policy"]
    assert "camera=(self)" in permissions and "microphone=(self)" in permissions
    assert "geolocation=()" in permissions
    assert "strict-transport-security" not in response.headers  # plain HTTP


async def test_pages_api_fhir_and_errors_carry_the_headers(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    answers = [
        await client.get("/login"),
        await client.get(f"/room/{ROOM}"),
        await client.get("/room/assets/room.js"),
        await client.get("/static/app.css"),
        await client.get("/api/patients", headers=headers),
        await client.get("/api/patients"),  # 401
        await client.get("/api/nothing-here"),  # 404
        await client.post("/api/patients", content=b"{", headers=headers),  # 400
        await client.get("/fhir/metadata"),
        await client.get("/health"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 401, 404, 400, 200, 200]
    for answer in answers:
        _assert_secured(answer)


async def test_hsts_only_over_tls(client: httpx.AsyncClient) -> None:
    """Behind a TLS-terminating proxy (trusted for X-Forwarded-Proto), answers carry HSTS."""
    over_tls = await client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert over_tls.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "strict-transport-security" not in (await client.get("/health")).headers


async def test_api_explorer_is_the_one_page_with_a_wider_policy(client: httpx.AsyncClient) -> None:
    explorer = await client.get("/schema/swagger")
    assert explorer.status_code == 200
    assert "https://cdn.jsdelivr.net" in _policy(explorer)["script-src"]
    assert _policy(explorer)["frame-ancestors"] == "'none'"
    _assert_secured(await client.get("/schema/openapi.json"))
