"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
from sqlmodel import select

from telehealth.auth.login import principal_of
from telehealth.auth.models import UserAccount
from telehealth.auth.tokens import issue_access_token
from telehealth.demo import DEMO_PASSWORD


@dataclass
class Authenticator:
    """What a person's phone app holds for an account: the secret, the recovery codes shown
    at enrolment, and the last time step whose code was used (a server refuses a code twice)."""

    secret: str
    recovery_codes: list[str]
    last_step: int = 0

    def next_code(self) -> str:
        """A code the server has not seen: from the current time step or the next (both are
        accepted), else a recovery code; never a sleep until the next step."""
        now = int(time.time() // 30)
        for step in (now, now + 1):
            if step > self.last_step:
                self.last_step = step
                return pyotp.TOTP(self.secret).at(step * 30)
        return self.recovery_codes.pop()


# By username: the latest enrolment made in this process (each test's database is new, so an
# account enrolled in this test is the one enrolled last).
AUTHENTICATORS: dict[str, Authenticator] = {}


async def login(
    client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD
) -> dict[str, str]:
    """Authorization headers for an account, as the server would issue them after a whole
    sign-in (with its second factor, where the role needs one).

    Minted directly from the account's row when the server runs in this process and the
    demo password is meant: signing in costs argon2 work and, for a role that must use two
    factors, an enrolment, and only the tests of signing in need those (they use
    ``sign_in``). Any other password goes through the whole sign-in."""
    server = getattr(client, "server", None)
    if server is None or server.app is None or password != DEMO_PASSWORD:
        return await sign_in(client, username, password)
    async with server.app.state.db.unit_of_work() as session:
        account = (
            await session.exec(select(UserAccount).where(UserAccount.username == username))
        ).one()
        assert account.active, f"{username} is disabled: it could not sign in"
        principal = principal_of(account)
    settings = server.settings
    token = issue_access_token(principal, settings.signing_key, settings.access_token_ttl_s)
    return {"Authorization": f"Bearer {token}"}


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD
) -> dict[str, str]:
    """Authorization headers through the whole sign-in a person goes through: the password,
    a code from the app where the account has one, and, where the role must use one and none
    is enrolled, the enrolment first."""
    tokens = await login_tokens(client, username, password)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def login_tokens(
    client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD
) -> dict[str, Any]:
    """The token response of a whole sign-in (see ``login``)."""
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if body.get("second_factor_required"):
        code = AUTHENTICATORS[username].next_code()
        response = await client.post(
            "/api/auth/login/second-factor", json={"challenge": body["challenge"], "code": code}
        )
        assert response.status_code == 200, response.text
        body = response.json()
    identity = body["identity"]
    if identity["must_enrol_two_factor"] and not identity["must_change_password"]:
        await enrol_two_factor(
            client, username, {"Authorization": f"Bearer {body['access_token']}"}
        )
        return await login_tokens(client, username, password)
    return body


async def enrol_two_factor(
    client: httpx.AsyncClient, username: str, headers: dict[str, str]
) -> Authenticator:
    """Add the account to an authenticator (kept in ``AUTHENTICATORS``), as a person scanning
    the QR code would, and confirm it with a first code."""
    started = await client.post("/api/auth/two-factor", headers=headers)
    assert started.status_code == 200, started.text
    app = Authenticator(started.json()["secret"], [])
    confirmed = await client.post(
        "/api/auth/two-factor/confirm", json={"code": app.next_code()}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    app.recovery_codes = confirmed.json()["recovery_codes"]
    AUTHENTICATORS[username] = app
    return app


async def first_login(
    client: httpx.AsyncClient, username: str, given: str, own: str
) -> dict[str, str]:
    """Log in to an account someone else made (password ``given``), choose ``own`` as the
    password must be changed first, and log in again with it."""
    headers = await login(client, username, given)
    body = {"current_password": given, "new_password": own}
    changed = await client.post("/api/auth/password", json=body, headers=headers)
    assert changed.status_code == 204, changed.text
    return await sign_in(client, username, own)


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
