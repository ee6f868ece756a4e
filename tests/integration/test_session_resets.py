"""An account deactivated, given another role or a new password is refused at once, not when
its access token expires (telehealth.auth.revocation). Across processes: tests/e2e."""

from __future__ import annotations

import httpx

from telehealth.demo import DEMO_PASSWORD
from tests.helpers import login


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/auth/me", headers=headers)


async def test_a_deactivated_account_is_refused_at_once(client: httpx.AsyncClient) -> None:
    doctor, colleague = await login(client, "bs.xa1"), await login(client, "bs.xa2")
    admin = await login(client, "quantri")
    account_id = (await _me(client, doctor)).json()["id"]

    off = await client.patch(
        f"/api/admin/accounts/{account_id}", json={"active": False}, headers=admin
    )
    assert off.status_code == 200, off.text
    refused = await _me(client, doctor)
    assert refused.status_code == 401
    assert "log in again" in refused.json()["detail"]
    assert (await client.get("/api/patients", headers=doctor)).status_code == 401
    assert (await client.get("/fhir/Patient", headers=doctor)).status_code == 401
    assert (await _me(client, colleague)).status_code == 200  # only that account


async def test_a_new_role_takes_effect_at_the_next_login(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa2")
    admin = await login(client, "quantri")
    account_id = (await _me(client, doctor)).json()["id"]
    unchanged = await client.patch(
        f"/api/admin/accounts/{account_id}", json={"role": "requester"}, headers=admin
    )
    assert unchanged.status_code == 200, unchanged.text
    assert (await _me(client, doctor)).status_code == 200  # the same role: nothing to end

    moved = await client.patch(
        f"/api/admin/accounts/{account_id}", json={"role": "coordinator"}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert (await _me(client, doctor)).status_code == 401
    again = await _me(client, await login(client, "bs.xa2"))
    assert again.status_code == 200 and again.json()["role"] == "coordinator"


async def test_a_new_password_ends_every_session_and_the_next_login_works(
    client: httpx.AsyncClient,
) -> None:
    phone, desk = await login(client, "bs.xa3"), await login(client, "bs.xa3")
    changed = await client.post(
        "/api/auth/password",
        json={"current_password": DEMO_PASSWORD, "new_password": "Mật-khẩu-mới-2026"},
        headers=phone,
    )
    assert changed.status_code == 204, changed.text
    assert (await _me(client, phone)).status_code == 401
    assert (await _me(client, desk)).status_code == 401
    # Logging in within the same second as the change is not mistaken for an older session.
    fresh = await login(client, "bs.xa3", "Mật-khẩu-mới-2026")
    assert (await _me(client, fresh)).status_code == 200


async def test_an_administrator_setting_a_password_ends_the_sessions(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa4")
    admin = await login(client, "quantri")
    account_id = (await _me(client, doctor)).json()["id"]
    reset = await client.patch(
        f"/api/admin/accounts/{account_id}",
        json={"new_password": "Đặt-lại-mật-khẩu-2026-11"},
        headers=admin,
    )
    assert reset.status_code == 200, reset.text
    assert (await _me(client, doctor)).status_code == 401
    assert (await _me(client, admin)).status_code == 200
