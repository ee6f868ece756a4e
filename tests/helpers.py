"""Small helpers the tests share."""

from __future__ import annotations

import asyncio

import httpx

from telehealth.demo import DEMO_PASSWORD


async def login(
    client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD
) -> dict[str, str]:
    """Authorization headers for a demo (or test-made) account."""
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def first_login(
    client: httpx.AsyncClient, username: str, given: str, own: str
) -> dict[str, str]:
    """Log in to an account someone else made (password ``given``), choose ``own`` as the
    password must be changed first, and log in again with it."""
    headers = await login(client, username, given)
    body = {"current_password": given, "new_password": own}
    changed = await client.post("/api/auth/password", json=body, headers=headers)
    assert changed.status_code == 204, changed.text
    return await login(client, username, own)


def assert_problem(
    response: httpx.Response, status: int, *, field: str | None = None
) -> dict[str, object]:
    """The response is problem+json with this status (and names ``field`` if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    if field is not None:
        errors = body.get("errors")
        assert isinstance(errors, list)
        assert any(field in str(error["field"]) for error in errors), body
    return body


REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_reachable() -> bool:
    """A local Redis for the Channels tests (skipped without one)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 6379), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
