"""Administrators cannot lock the service out of administration: not by deactivating or
demoting themselves, and not by removing the last active administrator, even when several
administrators act at the same moment (a race over real HTTP, on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re

import httpx
from sqlmodel import col, select

from telehealth.auth.models import Role, UserAccount
from telehealth.db import Database
from tests.helpers import assert_problem, first_login, login
from tests.integration.test_web_session import csrf_token, page_login

PASSWORD = "Mat-khau-quan-tri-2026"
GIVEN = "Mat-khau-tam-thoi-2026"


async def _station(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    found = await client.get("/api/organizations", params={"moh_code": "82103"}, headers=headers)
    return str(found.json()["items"][0]["id"])


async def _new_administrators(
    client: httpx.AsyncClient, admin: dict[str, str], count: int
) -> list[tuple[str, dict[str, str]]]:
    """``count`` more administrators: (account id, their Authorization headers)."""
    organization = await _station(client, admin)
    made = []
    for number in range(count):
        created = await client.post(
            "/api/admin/accounts",
            json={
                "username": f"quantri.{number}",
                "password": GIVEN,
                "display_name": f"Quản trị {number}",
                "role": "administrator",
                "organization_id": organization,
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        headers = await first_login(client, f"quantri.{number}", GIVEN, PASSWORD)
        made.append((created.json()["id"], headers))
    return made


async def _my_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await client.get("/api/auth/me", headers=headers)).json()["id"])


async def _active_administrators(db: Database) -> list[str]:
    async with db.unit_of_work() as session:
        rows = await session.exec(
            select(UserAccount.username).where(
                UserAccount.role == Role.ADMINISTRATOR, col(UserAccount.active).is_(True)
            )
        )
        return sorted(rows.all())


async def test_an_administrator_cannot_deactivate_or_demote_themselves(
    client: httpx.AsyncClient, db: Database
) -> None:
    admin = await login(client, "quantri")
    [(other_id, _)] = await _new_administrators(client, admin, 1)
    me = await _my_id(client, admin)
    url = f"/api/admin/accounts/{me}"
    off = await client.patch(url, json={"active": False}, headers=admin)
    body = assert_problem(off, 422, field="active")
    assert "another administrator" in str(body["detail"])
    demoted = await client.patch(url, json={"role": "coordinator"}, headers=admin)
    assert_problem(demoted, 422, field="role")
    # Changing one's own language or password, or "setting" one's own role, stays allowed.
    same = await client.patch(url, json={"role": "administrator", "language": "en"}, headers=admin)
    assert same.status_code == 200, same.text
    assert await _active_administrators(db) == ["quantri", "quantri.0"]
    # Another administrator may do it (and undo it).
    assert (
        await client.patch(f"/api/admin/accounts/{other_id}", json={"active": False}, headers=admin)
    ).status_code == 200


async def test_the_last_active_administrator_cannot_be_removed(
    client: httpx.AsyncClient, db: Database
) -> None:
    admin = await login(client, "quantri")
    [(other_id, other)] = await _new_administrators(client, admin, 1)
    me = await _my_id(client, admin)
    demoted = await client.patch(
        f"/api/admin/accounts/{other_id}", json={"role": "specialist"}, headers=admin
    )
    assert demoted.status_code == 200, demoted.text
    # The demoted administrator's token still says "administrator": it is refused at once,
    # not when it expires (auth.revocation), so it cannot remove the last one.
    for change in ({"active": False}, {"role": "requester"}):
        refused = await client.patch(f"/api/admin/accounts/{me}", json=change, headers=other)
        assert_problem(refused, 401)
    assert await _active_administrators(db) == ["quantri"]
    # Logged in again, the demoted one is refused by their role.
    other = await login(client, "quantri.0", PASSWORD)
    refused = await client.patch(f"/api/admin/accounts/{me}", json={"active": False}, headers=other)
    assert_problem(refused, 403)
    # With a second administrator again, the first may go.
    assert (
        await client.patch(
            f"/api/admin/accounts/{other_id}", json={"role": "administrator"}, headers=admin
        )
    ).status_code == 200
    other = await login(client, "quantri.0", PASSWORD)  # the promotion ended their session
    gone = await client.patch(f"/api/admin/accounts/{me}", json={"active": False}, headers=other)
    assert gone.status_code == 200, gone.text
    assert await _active_administrators(db) == ["quantri.0"]


async def test_administrators_removing_each_other_at_once_leave_exactly_one(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Eight administrators each remove the next one (in a ring) in concurrent requests:
    whatever the order, exactly one request must be refused and one administrator remain."""
    admin = await login(client, "quantri")
    ring = [(await _my_id(client, admin), admin), *await _new_administrators(client, admin, 7)]
    changes = [{"active": False}, {"role": "coordinator"}]

    async def remove_next(position: int) -> httpx.Response:
        _, headers = ring[position]
        target, _ = ring[(position + 1) % len(ring)]
        change = changes[position % 2]
        return await client.patch(f"/api/admin/accounts/{target}", json=change, headers=headers)

    responses = await asyncio.gather(*(remove_next(i) for i in range(len(ring))))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (len(ring) - 1) + [409], [r.text for r in responses]
    [refusal] = [r for r in responses if r.status_code == 409]
    assert "last active administrator" in str(assert_problem(refusal, 409)["detail"])
    assert len(await _active_administrators(db)) == 1


async def test_the_accounts_page_shows_the_refusal(client: httpx.AsyncClient) -> None:
    assert (await page_login(client, "quantri")).status_code == 303
    listing = await client.get("/admin/accounts")
    mine = re.search(r'id="account-quantri">(.*?)</tr>', listing.text, re.S)
    assert mine and "tài khoản của bạn" in mine.group(1)
    assert "/deactivate" not in mine.group(1)  # not offered on one's own account
    me = re.search(r'action="/admin/accounts/([0-9a-f-]+)/password"', mine.group(1))
    assert me
    token = await csrf_token(client, "/admin/accounts")
    refused = await client.post(
        f"/admin/accounts/{me.group(1)}/deactivate", data={"_csrf_token": token}
    )
    assert refused.status_code == 422
    alert = re.search(r'id="account-refusal">(.*?)</p>', refused.text, re.S)
    assert alert and "Bạn không thể vô hiệu hóa tài khoản của chính mình" in alert.group(1)
    still = await client.post(
        "/api/auth/login", json={"username": "quantri", "password": "telehealth-demo-only"}
    )
    assert still.status_code == 200
    # Other refusals of an account action are said there too, naming what to fix.
    doctor = re.search(
        r'id="account-bs\.xa1">.*?action="(/admin/accounts/[0-9a-f-]+/password)"',
        listing.text,
        re.S,
    )
    assert doctor
    weak = await client.post(doctor.group(1), data={"_csrf_token": token, "new_password": "abc"})
    assert weak.status_code == 422
    alert = re.search(r'id="account-refusal">(.*?)</p>', weak.text, re.S)
    assert alert and alert.group(1) == "Mật khẩu mới: phải có ít nhất 16 ký tự"
