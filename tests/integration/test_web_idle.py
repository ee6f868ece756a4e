"""A browser session ends after ``web_idle_timeout_s`` without a page request (issue #13,
level 3), over the real server; API refresh tokens are not bound. Instead of waiting, a test
sets the session's last page back in time: the ``th_seen`` cookie the server would have
signed then."""

from __future__ import annotations

import time
import uuid

import httpx

from telehealth.auth.tokens import read_access_token
from telehealth.http.cookies import ACCESS_COOKIE, ACTIVITY_COOKIE, REFRESH_COOKIE, activity_cookie
from telehealth.settings import Settings
from tests.helpers import assert_problem
from tests.integration.test_web_session import page_login


def _seen_ago(settings: Settings, account: uuid.UUID, seconds: float) -> str:
    """A ``th_seen`` value recording a page answered ``seconds`` ago."""
    return activity_cookie(settings, account, clock=lambda: time.time() - seconds).value or ""


def _last_page_was(client: httpx.AsyncClient, settings: Settings, seconds: float) -> None:
    for cookie in client.cookies.jar:
        if cookie.name == ACTIVITY_COOKIE and cookie.value:
            cookie.value = _seen_ago(settings, uuid.UUID(cookie.value.split(".")[0]), seconds)


def _last_page_at(client: httpx.AsyncClient) -> float:
    return int(client.cookies[ACTIVITY_COOKIE].split(".")[1]) / 1000


async def test_pages_keep_the_session_alive(client: httpx.AsyncClient, settings: Settings) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    for _ in range(3):  # 2.25 idle periods in all, never one without a page
        _last_page_was(client, settings, settings.web_idle_timeout_s * 0.75)
        before = int(time.time() * 1000) / 1000
        assert (await client.get("/patients")).status_code == 200
        assert _last_page_at(client) >= before  # the page recorded itself


async def test_an_idle_session_is_not_renewed_and_its_refresh_token_is_revoked(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    refresh = client.cookies.get(REFRESH_COOKIE)
    _last_page_was(client, settings, settings.web_idle_timeout_s + 0.5)
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
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Even sent along with the record of a page session idle for longer than the limit."""
    tokens = await client.post(
        "/api/auth/login", json={"username": "bs.xa2", "password": "telehealth-demo-only"}
    )
    account = read_access_token(tokens.json()["access_token"], settings.signing_key).id
    idle = _seen_ago(settings, account, settings.web_idle_timeout_s + 0.5)
    renewed = await client.post(
        "/api/auth/refresh",
        json={"refresh_token": tokens.json()["refresh_token"]},
        headers={"Cookie": f"{ACTIVITY_COOKIE}={idle}"},
    )
    assert renewed.status_code == 200, renewed.text
