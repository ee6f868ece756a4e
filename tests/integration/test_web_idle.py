"""A browser session ends after ``web_idle_timeout_s`` without a page request (issue #13,
level 3), over the real server with a two-second timeout; API refresh tokens are not bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from telehealth.settings import Settings
from telehealth.web.cookies import ACCESS_COOKIE, ACTIVITY_COOKIE, REFRESH_COOKIE
from tests.helpers import assert_problem
from tests.integration.test_web_session import page_login

IDLE_S = 2


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key="test-signing-key-" + "x" * 32,
        scheduler_enabled=False,
        gc_freeze=False,
        web_idle_timeout_s=IDLE_S,
    )


async def test_pages_keep_the_session_alive(client: httpx.AsyncClient) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    for _ in range(3):  # 3 s in all, never 2 s without a page
        await asyncio.sleep(IDLE_S / 2)
        assert (await client.get("/patients")).status_code == 200


async def test_an_idle_session_is_not_renewed_and_its_refresh_token_is_revoked(
    client: httpx.AsyncClient,
) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    refresh = client.cookies.get(REFRESH_COOKIE)
    await asyncio.sleep(IDLE_S + 0.5)
    bounced = await client.get("/patients")
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/session/refresh?next=/patients"
    ended = await client.get(bounced.headers["location"])
    assert ended.status_code == 303 and ended.headers["location"] == "/login?next=/patients"
    assert not client.cookies.get(ACCESS_COOKIE)
    assert (await client.get("/patients")).headers["location"].startswith("/login")
    reused = await client.post("/api/auth/refresh", json={"refresh_token": refresh})
    assert_problem(reused, 401)


async def test_the_moment_of_the_last_page_cannot_be_forged(client: httpx.AsyncClient) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    seen = client.cookies.get(ACTIVITY_COOKIE)
    assert seen
    account, moment, signature = seen.split(".")
    for cookie in client.cookies.jar:
        if cookie.name == ACTIVITY_COOKIE:
            cookie.value = f"{account}.{int(moment) + 3_600_000}.{signature}"
    bounced = await client.get("/patients")
    assert bounced.status_code == 303 and bounced.headers["location"].startswith("/session/")


async def test_api_refresh_tokens_are_not_bound_by_the_page_idle_rule(
    client: httpx.AsyncClient,
) -> None:
    tokens = await client.post(
        "/api/auth/login", json={"username": "bs.xa2", "password": "telehealth-demo-only"}
    )
    await asyncio.sleep(IDLE_S + 0.5)
    renewed = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens.json()["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
