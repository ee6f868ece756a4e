"""Two-factor sign-in (issue #13, level 3), over the real server: required for administrators
and coordinators (enrol before anything else), optional for others, a setting to require it
for all; codes accepted once, recovery codes once each, wrong codes backed off like wrong
passwords; system clients unaffected; an administrator can reset it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest
from sqlmodel import col, select

from telehealth.auth.models import AuditEvent, TwoFactor, UserAccount
from telehealth.db import Database
from telehealth.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD
from telehealth.settings import Settings
from tests.helpers import AUTHENTICATORS, Authenticator, assert_problem, enrol_two_factor, sign_in
from tests.integration.test_web_session import csrf_token, page_login

LOGIN = "/api/auth/login"
SECOND = "/api/auth/login/second-factor"
ENROL = "/api/auth/two-factor"


def _bearer(body: dict[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


async def _password(client: httpx.AsyncClient, username: str) -> dict[str, object]:
    response = await client.post(LOGIN, json={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def _code(client: httpx.AsyncClient, challenge: object, code: str) -> httpx.Response:
    return await client.post(SECOND, json={"challenge": challenge, "code": code})


async def _audit(db: Database, account: str) -> list[tuple[str, str, str | None]]:
    async with db.unit_of_work() as session:
        user = (
            await session.exec(select(UserAccount).where(UserAccount.username == account))
        ).one()
        rows = await session.exec(
            select(AuditEvent)
            .where(AuditEvent.entity_id == str(user.id))
            .order_by(col(AuditEvent.seq))
        )
        return [(row.action, row.outcome.value, row.detail) for row in rows]


@pytest.fixture(autouse=True)
def _forget_authenticators() -> Iterator[None]:
    yield
    AUTHENTICATORS.clear()


async def test_a_coordinator_must_enrol_before_anything_else(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = await _password(client, "dieuphoi")
    assert "second_factor_required" not in body
    assert body["identity"]["must_enrol_two_factor"] is True  # type: ignore[index]
    restricted = _bearer(body)
    refused = await client.get("/api/consults", headers=restricted)
    problem = assert_problem(refused, 403)
    assert "second factor" in str(problem["detail"])
    assert (await client.get("/api/auth/me", headers=restricted)).status_code == 200

    started = await client.post(ENROL, headers=restricted)
    assert started.status_code == 200, started.text
    enrolment = started.json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/Telehealth:dieuphoi?")
    assert f"secret={enrolment['secret']}" in enrolment["otpauth_uri"]
    assert enrolment["qr_svg"].startswith("<svg")
    # Asked again (a page reloaded), the same secret: the app already scanned stays right.
    assert (await client.post(ENROL, headers=restricted)).json()["secret"] == enrolment["secret"]

    wrong = await client.post(f"{ENROL}/confirm", json={"code": "000000"}, headers=restricted)
    assert_problem(wrong, 422, field="code")
    status = await client.get(ENROL, headers=restricted)
    assert status.json()["enrolled"] is False and status.json()["required"] is True

    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = await client.post(f"{ENROL}/confirm", json={"code": totp.now()}, headers=restricted)
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    # Every session of the account ended, the enrolling one too.
    assert (await client.get("/api/auth/me", headers=restricted)).status_code == 401

    # The secret is not stored as the app holds it.
    async with db.unit_of_work() as session:
        stored = (await session.exec(select(TwoFactor))).all()
    assert len(stored) == 1 and enrolment["secret"] not in stored[0].secret

    challenge = await _password(client, "dieuphoi")
    assert challenge["second_factor_required"] is True and "access_token" not in challenge
    next_code = totp.at(time.time() + 30)  # the first code was spent at enrolment
    full = await _code(client, challenge["challenge"], next_code)
    assert full.status_code == 200, full.text
    assert full.json()["identity"]["must_enrol_two_factor"] is False
    assert (await client.get("/api/consults", headers=_bearer(full.json()))).status_code == 200
    assert [a for a in await _audit(db, "dieuphoi") if a[0] != "login"] == [
        ("two-factor-on", "success", None)
    ]


async def test_a_code_works_once_and_a_recovery_code_once(client: httpx.AsyncClient) -> None:
    headers = await sign_in(client, "dieuphoi")  # enrols, then logs in with a code
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    app = AUTHENTICATORS["dieuphoi"]
    used = pyotp.TOTP(app.secret).at(app.last_step * 30)
    replay = await _code(client, (await _password(client, "dieuphoi"))["challenge"], used)
    assert_problem(replay, 401)
    recovery = app.recovery_codes[0]
    first = await _code(client, (await _password(client, "dieuphoi"))["challenge"], recovery)
    assert first.status_code == 200, first.text
    # Typed as people do: lower case, without the dash.
    again = recovery.replace("-", "").lower()
    second = await _code(client, (await _password(client, "dieuphoi"))["challenge"], again)
    assert_problem(second, 401)
    status = await client.get(ENROL, headers=_bearer(first.json()))
    assert status.json()["recovery_codes_left"] == 9


async def test_wrong_codes_back_off_like_wrong_passwords(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await sign_in(client, "dieuphoi")
    app = AUTHENTICATORS["dieuphoi"]
    for _ in range(settings.login_max_failures):
        challenge = (await _password(client, "dieuphoi"))["challenge"]
        assert_problem(await _code(client, challenge, "123456"), 401)
    # Shut out now from this address, even with the right password (and so any code).
    refused = await client.post(LOGIN, json={"username": "dieuphoi", "password": DEMO_PASSWORD})
    assert_problem(refused, 401)
    assert "Too many failed logins" in refused.json()["detail"]
    assert app.recovery_codes  # not spent
    denied = [a for a in await _audit(db, "dieuphoi") if a[1] == "denied"]
    assert denied.count(("login", "denied", "wrong code")) == settings.login_max_failures


async def test_a_challenge_is_no_access_token_and_a_forged_one_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client, "dieuphoi")
    challenge = (await _password(client, "dieuphoi"))["challenge"]
    as_token = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {challenge}"})
    assert as_token.status_code == 401
    forged = await _code(
        client, str(challenge)[:-4] + "AAAA", AUTHENTICATORS["dieuphoi"].next_code()
    )
    assert_problem(forged, 401)


async def test_a_specialist_may_turn_it_on_and_off_and_a_coordinator_may_not_turn_it_off(
    client: httpx.AsyncClient,
) -> None:
    direct = await _password(client, "bs.tim")
    assert "access_token" in direct  # optional for specialists: no code, no enrolment
    await enrol_two_factor(client, "bs.tim", _bearer(direct))
    assert (await _password(client, "bs.tim"))["second_factor_required"] is True
    headers = await sign_in(client, "bs.tim")
    wrong = await client.post(f"{ENROL}/off", json={"password": "not-it"}, headers=headers)
    assert_problem(wrong, 422, field="password")
    off = await client.post(f"{ENROL}/off", json={"password": DEMO_PASSWORD}, headers=headers)
    assert off.status_code == 204, off.text
    assert "access_token" in await _password(client, "bs.tim")

    coordinator = await sign_in(client, "dieuphoi")
    kept = await client.post(f"{ENROL}/off", json={"password": DEMO_PASSWORD}, headers=coordinator)
    assert_problem(kept, 403)
    assert (await _password(client, "dieuphoi"))["second_factor_required"] is True


async def test_new_recovery_codes_replace_the_old_ones(client: httpx.AsyncClient) -> None:
    headers = await sign_in(client, "dieuphoi")
    app = AUTHENTICATORS["dieuphoi"]
    old = list(app.recovery_codes)
    renewed = await client.post(
        f"{ENROL}/recovery-codes", json={"code": app.next_code()}, headers=headers
    )
    assert renewed.status_code == 200, renewed.text
    new = renewed.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    stale = await _code(client, (await _password(client, "dieuphoi"))["challenge"], old[0])
    assert_problem(stale, 401)
    fresh = await _code(client, (await _password(client, "dieuphoi"))["challenge"], new[0])
    assert fresh.status_code == 200, fresh.text


async def test_an_administrator_resets_a_lost_phone_and_others_may_not(
    client: httpx.AsyncClient, db: Database
) -> None:
    coordinator = await sign_in(client, "dieuphoi")
    me = (await client.get("/api/auth/me", headers=coordinator)).json()["id"]
    specialist = await sign_in(client, "bs.tim")
    not_allowed = await client.patch(
        f"/api/admin/accounts/{me}", json={"reset_two_factor": True}, headers=specialist
    )
    assert not_allowed.status_code == 403
    assert (await _password(client, "dieuphoi"))["second_factor_required"] is True

    admin = await sign_in(client, "quantri")

    async def listed() -> bool:
        rows = (await client.get("/api/admin/accounts", headers=admin)).json()
        return next(r["two_factor_enrolled"] for r in rows if r["username"] == "dieuphoi")

    assert await listed() is True
    reset = await client.patch(
        f"/api/admin/accounts/{me}", json={"reset_two_factor": True}, headers=admin
    )
    assert reset.status_code == 200, reset.text
    assert (await client.get("/api/auth/me", headers=coordinator)).status_code == 401
    assert await listed() is False
    again = await _password(client, "dieuphoi")
    assert again["identity"]["must_enrol_two_factor"] is True  # type: ignore[index]
    async with db.unit_of_work() as session:
        user = (
            await session.exec(select(UserAccount).where(UserAccount.username == "dieuphoi"))
        ).one()
        assert await session.get(TwoFactor, user.id) is None


async def test_system_clients_are_unaffected(client: httpx.AsyncClient) -> None:
    token = await client.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    assert token.status_code == 200, token.text
    assert "second_factor_required" not in token.json()
    metadata = await client.get(
        "/fhir/Practitioner", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert metadata.status_code == 200, metadata.text


async def test_the_password_may_be_shorter_for_those_who_sign_in_with_a_code(
    client: httpx.AsyncClient,
) -> None:
    admin = await sign_in(client, "quantri")
    station = (
        await client.get("/api/organizations", params={"moh_code": "82103"}, headers=admin)
    ).json()["items"][0]["id"]

    async def create(username: str, role: str, password: str) -> httpx.Response:
        body = {
            "username": username,
            "password": password,
            "display_name": "Người Mới",
            "role": role,
            "organization_id": station,
        }
        return await client.post("/api/admin/accounts", json=body, headers=admin)

    twelve = "Kham-tu-xa-7"
    assert len(twelve) == 12
    assert (await create("dieuphoi.moi", "coordinator", twelve)).status_code == 201
    body = assert_problem(await create("bs.moi.xa", "requester", twelve), 422, field="password")
    assert "16" in str(body["errors"])

    # A specialist who turns it on may choose a 12-character password.
    headers = await sign_in(client, "bs.tim")
    change = {"current_password": DEMO_PASSWORD, "new_password": twelve}
    short = await client.post("/api/auth/password", json=change, headers=headers)
    assert_problem(short, 422, field="new_password")
    direct = await _password(client, "bs.tim")
    await enrol_two_factor(client, "bs.tim", _bearer(direct))
    headers = await sign_in(client, "bs.tim")
    accepted = await client.post("/api/auth/password", json=change, headers=headers)
    assert accepted.status_code == 204, accepted.text


class TestRequiredForAll:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"two_factor_required_for": "all"})

    async def test_a_commune_doctor_must_enrol_too(self, client: httpx.AsyncClient) -> None:
        body = await _password(client, "bs.xa1")
        assert body["identity"]["must_enrol_two_factor"] is True  # type: ignore[index]
        refused = await client.get("/api/patients", headers=_bearer(body))
        assert_problem(refused, 403)
        headers = await sign_in(client, "bs.xa1")  # enrols, then signs in with a code
        assert (await client.get("/api/patients", headers=headers)).status_code == 200
        assert isinstance(AUTHENTICATORS["bs.xa1"], Authenticator)


async def test_the_account_page_renews_codes_and_turns_it_off(client: httpx.AsyncClient) -> None:
    direct = await _password(client, "bs.tim")
    await enrol_two_factor(client, "bs.tim", _bearer(direct))
    assert (await page_login(client, "bs.tim")).status_code == 303
    shown = await client.get("/account/two-factor")
    assert "Số mã khôi phục còn lại: 10" in shown.text
    token = await csrf_token(client, "/account/two-factor")
    wrong = await client.post(
        "/account/two-factor/recovery-codes", data={"_csrf_token": token, "code": "000000"}
    )
    assert wrong.status_code == 422 and "không phải mã ứng dụng" in wrong.text
    renewed = await client.post(
        "/account/two-factor/recovery-codes",
        data={"_csrf_token": token, "code": AUTHENTICATORS["bs.tim"].next_code()},
    )
    assert renewed.status_code == 200
    assert renewed.text.count("<li><code>") == 10
    off = await client.post(
        "/account/two-factor/off", data={"_csrf_token": token, "password": DEMO_PASSWORD}
    )
    assert off.status_code == 303 and off.headers["location"] == "/login?notice=two_factor_off"
    assert "access_token" in await _password(client, "bs.tim")
