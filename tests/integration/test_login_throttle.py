"""Login back-off by source address and by (account, address), over the real server.

The test server trusts ``X-Forwarded-For`` from loopback (uvicorn's ``forwarded_allow_ips``
default, as ``telehealth serve`` behind a local proxy), so each request says which address
it comes from, as a proxy in front of the service would.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from telehealth.auth.models import LoginThrottle
from telehealth.db import Database
from telehealth.demo import DEMO_PASSWORD
from telehealth.settings import Settings
from telehealth.timers.service import schedule
from telehealth.timeutil import utcnow
from tests.conftest import RunningServer
from tests.handler_support import fire
from tests.helpers import assert_problem
from tests.integration.test_web_session import csrf_token

HERE = "203.0.113.7"  # an attacker's address (TEST-NET-3)
ELSEWHERE = "198.51.100.9"  # the account's owner (TEST-NET-2)
ADDRESS_LIMIT = 8


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"login_address_max_failures": ADDRESS_LIMIT})


async def _login(
    client: httpx.AsyncClient, username: str, password: str, address: str = HERE
) -> httpx.Response:
    return await client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


async def _fail(client: httpx.AsyncClient, username: str, times: int) -> None:
    for _ in range(times):
        assert_problem(await _login(client, username, "wrong-password-1"), 401)


async def test_unknown_wrong_and_locked_names_get_the_same_answer(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    limit = server.settings.login_max_failures
    first = {name: await _login(client, name, "wrong-password-1") for name in ("bs.xa2", "nobody")}
    await _fail(client, "bs.xa2", limit - 1)
    await _fail(client, "nobody", limit - 1)
    locked = await _login(client, "bs.xa2", DEMO_PASSWORD)
    unknown = await _login(client, "nobody", DEMO_PASSWORD)
    for answers in (first, {"bs.xa2": locked, "nobody": unknown}):
        real, missing = answers["bs.xa2"], answers["nobody"]
        assert real.status_code == missing.status_code == 401
        assert real.json() == missing.json()
        assert real.headers.get("www-authenticate") == missing.headers.get("www-authenticate")
        assert ("retry-after" in real.headers) == ("retry-after" in missing.headers)
    assert "retry-after" in locked.headers
    assert "try again" in str(locked.json()["detail"])


async def test_failures_from_one_address_do_not_shut_the_owner_out(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    await _fail(client, "quantri", server.settings.login_max_failures)
    assert_problem(await _login(client, "quantri", DEMO_PASSWORD), 401)
    owner = await _login(client, "quantri", DEMO_PASSWORD, address=ELSEWHERE)
    assert owner.status_code == 200, owner.text
    # Nor are the owner's sessions cut short: refreshing still works.
    renewed = await client.post(
        "/api/auth/refresh",
        json={"refresh_token": owner.json()["refresh_token"]},
        headers={"X-Forwarded-For": ELSEWHERE},
    )
    assert renewed.status_code == 200, renewed.text


async def test_one_address_is_throttled_across_accounts(client: httpx.AsyncClient) -> None:
    # One wrong guess per name: no (account, address) pair reaches its limit.
    for n in range(ADDRESS_LIMIT):
        assert_problem(await _login(client, f"guess.{n}", "wrong-password-1"), 401)
    throttled = await _login(client, "bs.xa1", DEMO_PASSWORD)
    assert_problem(throttled, 401)
    assert "retry-after" in throttled.headers
    assert (await _login(client, "bs.xa1", DEMO_PASSWORD, address=ELSEWHERE)).status_code == 200


async def _page_login(
    client: httpx.AsyncClient, username: str, password: str, address: str = HERE
) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(
        "/login",
        data={"_csrf_token": token, "username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


async def test_login_page_backs_off_by_address_and_says_the_same_for_unknown_names(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    for name in ("bs.xa3", "nobody"):
        for _ in range(server.settings.login_max_failures):
            assert (await _page_login(client, name, "wrong-password-1")).status_code == 401
    locked = await _page_login(client, "bs.xa3", DEMO_PASSWORD)
    unknown = await _page_login(client, "nobody", DEMO_PASSWORD)
    assert locked.status_code == unknown.status_code == 401
    message = 'id="form-message"'
    assert message in locked.text
    said = locked.text.split(message, 1)[1].split("<", 1)[0]
    assert said == unknown.text.split(message, 1)[1].split("<", 1)[0]
    assert "Đăng nhập sai quá nhiều lần" in said
    owner = await _page_login(client, "bs.xa3", DEMO_PASSWORD, address=ELSEWHERE)
    assert owner.status_code == 303, owner.text


async def test_the_daily_job_forgets_old_failures_and_keeps_recent_ones(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await _fail(client, "bs.xa5", 1)
    await _fail(client, "bs.xa6", 1)
    old = utcnow() - timedelta(seconds=settings.login_lockout_s + 1)
    async with db.unit_of_work() as session:
        await session.exec(
            update(LoginThrottle)
            .where(col(LoginThrottle.username) == "bs.xa5")
            .values(last_failure_at=old)
        )
        schedule(session, "daily.forget_old_login_failures", uuid.uuid4(), utcnow())
    assert len(await fire(db, settings, ["daily.forget_old_login_failures"])) == 1
    async with db.unit_of_work() as session:
        kept = (await session.exec(select(LoginThrottle.username))).all()
    assert sorted(kept, key=str) == sorted([None, "bs.xa6"], key=str)
