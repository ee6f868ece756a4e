"""The password rules (issue #13, level 3), over the real server: the minimum length, common
passwords and the username refused, the last five refused, and a change forced when someone
else chose the password."""

from __future__ import annotations

import itertools

import httpx
import pytest

from telehealth.demo import DEMO_PASSWORD
from tests.helpers import assert_problem, login
from tests.integration.test_web_session import csrf_token

ACCOUNTS = "/api/admin/accounts"
CHANGE = "/api/auth/password"
FIRST = "Mat-khau-rieng-2026-a"


async def _new_account(
    client: httpx.AsyncClient, admin: dict[str, str], username: str, password: str
) -> httpx.Response:
    station = (
        await client.get("/api/organizations", params={"moh_code": "82103"}, headers=admin)
    ).json()["items"][0]["id"]
    account = {
        "username": username,
        "password": password,
        "display_name": "BS. Người Mới",
        "role": "requester",
        "organization_id": station,
    }
    return await client.post(ACCOUNTS, json=account, headers=admin)


async def _change(
    client: httpx.AsyncClient, username: str, current: str, new: str
) -> httpx.Response:
    headers = await login(client, username, current)
    body = {"current_password": current, "new_password": new}
    return await client.post(CHANGE, json=body, headers=headers)


async def test_a_password_shorter_than_the_setting_is_refused(client: httpx.AsyncClient) -> None:
    admin = await login(client, "quantri")
    short = await _new_account(client, admin, "bs.ngan", "Mat-khau-15-ky!")  # 15 characters
    body = assert_problem(short, 422, field="password")
    assert "16" in str(body["errors"])
    long_enough = await _new_account(client, admin, "bs.ngan", "Mat-khau-16-ky-!")
    assert long_enough.status_code == 201, long_enough.text


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("1Q2W3E4R5T6Y7U8I9O0P", "common"),  # on the list, in capitals
        ("Password1234567890!", "common"),  # "password" with digits and a symbol after it
        ("Bacsi.Nguyen.2026", "username"),
        ("neyugn.iscab-123456", "username"),  # reversed
    ],
)
async def test_common_passwords_and_the_username_are_refused(
    client: httpx.AsyncClient, password: str, why: str
) -> None:
    admin = await login(client, "quantri")
    refused = await _new_account(client, admin, "bacsi.nguyen", password)
    body = assert_problem(refused, 422, field="password")
    assert why in str(body["errors"])


async def test_the_last_five_passwords_are_refused_and_the_sixth_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    chosen = [DEMO_PASSWORD, *(f"Mat-khau-thu-{n}-cua-toi" for n in range(1, 6))]
    for current, new in itertools.pairwise(chosen[:5]):
        assert (await _change(client, "bs.xa1", current, new)).status_code == 204
    # Known now: the demo password, 1, 2, 3 and 4 (the current one).
    for old in chosen[:4]:
        assert_problem(await _change(client, "bs.xa1", chosen[4], old), 422, field="new_password")
    assert (await _change(client, "bs.xa1", chosen[4], chosen[5])).status_code == 204
    # The demo password is now the sixth last: it may come back.
    assert (await _change(client, "bs.xa1", chosen[5], DEMO_PASSWORD)).status_code == 204


async def test_an_account_made_by_an_administrator_must_change_its_password_first(
    client: httpx.AsyncClient,
) -> None:
    admin = await login(client, "quantri")
    assert (await _new_account(client, admin, "bs.moi", FIRST)).status_code == 201
    first = await login(client, "bs.moi", FIRST)  # the login itself succeeds
    body = assert_problem(await client.get("/api/patients", headers=first), 403)
    assert CHANGE in str(body["detail"])
    assert (await client.get("/api/auth/me", headers=first)).status_code == 200
    own = "Mat-khau-cua-chinh-toi-9"
    assert (await _change(client, "bs.moi", FIRST, own)).status_code == 204
    mine = await login(client, "bs.moi", own)
    assert (await client.get("/api/patients", headers=mine)).status_code == 200


async def test_an_administrators_reset_forces_a_change_and_the_demo_accounts_are_not_forced(
    client: httpx.AsyncClient,
) -> None:
    admin = await login(client, "quantri")
    demo = await login(client, "bs.xa2")
    assert (await client.get("/api/patients", headers=demo)).status_code == 200
    me = (await client.get("/api/auth/me", headers=demo)).json()
    reset = await client.patch(
        f"{ACCOUNTS}/{me['id']}", json={"new_password": FIRST}, headers=admin
    )
    assert reset.status_code == 200, reset.text
    after = await login(client, "bs.xa2", FIRST)
    assert_problem(await client.get("/api/patients", headers=after), 403)
    weak = await client.patch(
        f"{ACCOUNTS}/{me['id']}", json={"new_password": "qwertyuiop123456"}, headers=admin
    )
    assert_problem(weak, 422, field="new_password")


async def test_a_page_session_with_a_password_to_change_is_sent_to_the_change_form(
    client: httpx.AsyncClient,
) -> None:
    admin = await login(client, "quantri")
    assert (await _new_account(client, admin, "bs.trang", FIRST)).status_code == 201
    token = await csrf_token(client)
    logged = await client.post(
        "/login", data={"_csrf_token": token, "username": "bs.trang", "password": FIRST}
    )
    assert logged.status_code == 303
    home = await client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/account/password"
    form = await client.get("/account/password")
    assert form.status_code == 200 and 'name="new_password"' in form.text
