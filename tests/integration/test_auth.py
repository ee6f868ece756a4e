"""Logging in over HTTP: passwords, lockout, token expiry, refresh rotation, logout."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import jwt
from sqlmodel import col, select

from telehealth.auth.models import AuditEvent, UserAccount
from telehealth.auth.tokens import ISSUER
from telehealth.db import Database
from telehealth.demo import DEMO_PASSWORD
from telehealth.timeutil import utcnow
from tests.conftest import RunningServer
from tests.helpers import assert_problem, sign_in


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"username": username, "password": password})


async def test_login_gives_tokens_and_identity(client: httpx.AsyncClient) -> None:
    response = await _login(client, "bs.xa1", DEMO_PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"]
    assert body["identity"]["role"] == "requester"
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == body["identity"]["id"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    wrong = await _login(client, "bs.xa1", "not-the-password")
    unknown = await _login(client, "nobody.here", "not-the-password")
    for response in (wrong, unknown):
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "access_token" not in response.json()
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_lockout_after_repeated_failures_and_admin_unlock(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    limit = server.settings.login_max_failures
    for _ in range(limit):
        assert_problem(await _login(client, "bs.xa2", "wrong-password-1"), 401)
    locked = await _login(client, "bs.xa2", DEMO_PASSWORD)
    body = assert_problem(locked, 401)
    assert body["title"] == "Too many failed logins"
    retry_after = int(locked.headers["retry-after"])
    assert 0 < retry_after <= server.settings.login_lockout_s + 1
    assert "minute" in str(body["detail"])

    admin = await sign_in(client, "quantri")
    accounts = (await client.get("/api/admin/accounts?limit=200", headers=admin)).json()
    target = next(a for a in accounts if a["username"] == "bs.xa2")
    assert target["locked_until"] is not None
    unlocked = await client.patch(
        f"/api/admin/accounts/{target['id']}", json={"unlock": True}, headers=admin
    )
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["locked_until"] is None
    assert (await _login(client, "bs.xa2", DEMO_PASSWORD)).status_code == 200


async def test_success_resets_the_failure_count(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    limit = server.settings.login_max_failures
    for _ in range(limit - 1):
        await _login(client, "bs.xa3", "wrong-password-1")
    assert (await _login(client, "bs.xa3", DEMO_PASSWORD)).status_code == 200
    for _ in range(limit - 1):
        await _login(client, "bs.xa3", "wrong-password-1")
    assert (await _login(client, "bs.xa3", DEMO_PASSWORD)).status_code == 200


async def test_concurrent_wrong_guesses_are_all_counted(
    client: httpx.AsyncClient, server: RunningServer, db: Database
) -> None:
    """Parallel guesses race on the counter: the database counts them, so the lock holds."""
    guesses = server.settings.login_max_failures * 3
    responses = await asyncio.gather(
        *(_login(client, "bs.xa4", f"wrong-password-{n}") for n in range(guesses))
    )
    assert all(r.status_code == 401 for r in responses)
    assert_problem(await _login(client, "bs.xa4", DEMO_PASSWORD), 401)
    async with db.unit_of_work() as session:
        user = (
            await session.exec(select(UserAccount).where(UserAccount.username == "bs.xa4"))
        ).one()
        refusals = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "login", AuditEvent.actor_name == "bs.xa4"
                )
            )
        ).all()
    assert user.locked_until is not None and user.locked_until > utcnow()
    assert len(refusals) == guesses + 1
    assert all(event.outcome == "denied" for event in refusals)


async def test_expired_access_token_is_refused(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    identity = (await _login(client, "bs.xa1", DEMO_PASSWORD)).json()["identity"]
    past = utcnow() - timedelta(seconds=5)
    claims = {
        "iss": ISSUER,
        "sub": identity["id"],
        "typ": "user",
        "role": "requester",
        "org": identity["organization_id"],
        "iat": past - timedelta(minutes=15),
        "exp": past,
    }
    expired = jwt.encode(claims, server.settings.signing_key, algorithm="HS256")
    response = await client.get("/api/patients", headers={"Authorization": f"Bearer {expired}"})
    body = assert_problem(response, 401)
    assert "expired" in str(body["detail"])
    assert response.headers["www-authenticate"].startswith("Bearer")
    fresh = jwt.encode(
        {**claims, "exp": utcnow() + timedelta(minutes=5)},
        server.settings.signing_key,
        algorithm="HS256",
    )
    ok = await client.get("/api/patients", headers={"Authorization": f"Bearer {fresh}"})
    assert ok.status_code == 200


async def test_forged_and_malformed_tokens_are_refused(client: httpx.AsyncClient) -> None:
    token = (await _login(client, "bs.xa1", DEMO_PASSWORD)).json()["access_token"]
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}) | {"role": "administrator"},
        "guessed-key-" + "g" * 32,
        algorithm="HS256",
    )
    for header in (f"Bearer {forged}", "Bearer not-a-token", f"Basic {token}", token, "Bearer"):
        assert_problem(await client.get("/api/auth/me", headers={"Authorization": header}), 401)


async def test_refresh_rotates_and_a_spent_token_is_refused(client: httpx.AsyncClient) -> None:
    first = (await _login(client, "bs.xa1", DEMO_PASSWORD)).json()
    rotated = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["identity"]["id"] == first["identity"]["id"]
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert me.status_code == 200

    replayed = await client.post(
        "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert_problem(replayed, 401)
    unknown = await client.post("/api/auth/refresh", json={"refresh_token": "made-up"})
    assert_problem(unknown, 401)


async def test_concurrent_refresh_with_one_token_has_one_winner(
    client: httpx.AsyncClient,
) -> None:
    token = (await _login(client, "bs.xa1", DEMO_PASSWORD)).json()["refresh_token"]
    responses = await asyncio.gather(
        *(client.post("/api/auth/refresh", json={"refresh_token": token}) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [200] + [401] * 7


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    tokens = (await _login(client, "bs.xa1", DEMO_PASSWORD)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = await client.post(
        "/api/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert out.status_code == 204, out.text
    after = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(after, 401)


async def test_logout_cannot_revoke_someone_elses_token(client: httpx.AsyncClient) -> None:
    victim = (await _login(client, "bs.xa1", DEMO_PASSWORD)).json()
    other = await sign_in(client, "bs.xa2")
    await client.post(
        "/api/auth/logout", json={"refresh_token": victim["refresh_token"]}, headers=other
    )
    still = await client.post("/api/auth/refresh", json={"refresh_token": victim["refresh_token"]})
    assert still.status_code == 200


async def test_password_change_revokes_refresh_tokens_and_checks_strength(
    client: httpx.AsyncClient,
) -> None:
    tokens = (await _login(client, "bs.xa5", DEMO_PASSWORD)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    change = "/api/auth/password"
    weak = await client.post(
        change, json={"current_password": DEMO_PASSWORD, "new_password": "short1"}, headers=headers
    )
    assert_problem(weak, 422, field="new_password")
    letters = await client.post(
        change,
        json={"current_password": DEMO_PASSWORD, "new_password": "onlyletterslong"},
        headers=headers,
    )
    assert_problem(letters, 422, field="new_password")
    wrong = await client.post(
        change,
        json={"current_password": "not-my-password", "new_password": "Brand-new-pass-42"},
        headers=headers,
    )
    assert_problem(wrong, 422, field="current_password")
    assert (await _login(client, "bs.xa5", DEMO_PASSWORD)).status_code == 200

    done = await client.post(
        change,
        json={"current_password": DEMO_PASSWORD, "new_password": "Brand-new-pass-42"},
        headers=headers,
    )
    assert done.status_code == 204, done.text
    revoked = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_problem(revoked, 401)
    assert_problem(await _login(client, "bs.xa5", DEMO_PASSWORD), 401)
    assert (await _login(client, "bs.xa5", "Brand-new-pass-42")).status_code == 200


async def test_login_is_audited_with_where_from(client: httpx.AsyncClient, db: Database) -> None:
    await client.post(
        "/api/auth/login",
        json={"username": "bs.xa6", "password": "wrong-password-1"},
        headers={"User-Agent": "audit-probe/1.0", "X-Request-ID": "login-probe-1"},
    )
    async with db.unit_of_work() as session:
        event = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "login", AuditEvent.actor_name == "bs.xa6")
                .order_by(col(AuditEvent.recorded_at).desc())
            )
        ).first()
    assert event is not None
    assert event.outcome == "denied"
    assert event.ip == "127.0.0.1"
    assert event.user_agent == "audit-probe/1.0"
    assert event.request_id == "login-probe-1"
    assert uuid.UUID(str(event.actor_id))
