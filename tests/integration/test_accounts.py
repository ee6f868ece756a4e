"""Accounts and system clients over HTTP: administration, client credentials and their scopes."""

from __future__ import annotations

import base64

import httpx

from telehealth.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.helpers import assert_problem, login

TOKEN = "/api/auth/token"


async def _organization_id(client: httpx.AsyncClient, headers: dict[str, str], code: str) -> str:
    found = await client.get("/api/organizations", params={"moh_code": code}, headers=headers)
    return str(found.json()["items"][0]["id"])


async def _client_token(
    client: httpx.AsyncClient, scope: str | None = None, *, basic: bool = False
) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    if basic:
        secret = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
        return await client.post(TOKEN, data=form, headers={"Authorization": f"Basic {secret}"})
    form |= {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
    return await client.post(TOKEN, data=form)


def _bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_admin_creates_lists_updates_and_deactivates_an_account(
    client: httpx.AsyncClient,
) -> None:
    admin = await login(client, "quantri")
    station = await _organization_id(client, admin, "82103")
    new = {
        "username": "bs.moi",
        "password": "Mat-khau-bs-moi-2026",
        "display_name": "BS. Trần Thị Mới",
        "role": "requester",
        "organization_id": station,
    }
    created = await client.post("/api/admin/accounts", json=new, headers=admin)
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["active"] is True and "password" not in account
    assert_problem(await client.post("/api/admin/accounts", json=new, headers=admin), 409)

    listed = (await client.get("/api/admin/accounts?limit=200", headers=admin)).json()
    assert "bs.moi" in [a["username"] for a in listed]

    tokens = (
        await client.post(
            "/api/auth/login", json={"username": "bs.moi", "password": "Mat-khau-bs-moi-2026"}
        )
    ).json()
    assert tokens["identity"]["organization_id"] == station

    promoted = await client.patch(
        f"/api/admin/accounts/{account['id']}",
        json={"role": "coordinator", "language": "en"},
        headers=admin,
    )
    assert promoted.json()["role"] == "coordinator"
    assert promoted.json()["language"] == "en"

    off = await client.patch(
        f"/api/admin/accounts/{account['id']}", json={"active": False}, headers=admin
    )
    assert off.status_code == 200 and off.json()["active"] is False
    assert_problem(
        await client.post(
            "/api/auth/login", json={"username": "bs.moi", "password": "Mat-khau-bs-moi-2026"}
        ),
        401,
    )
    assert_problem(
        await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
        401,
    )


async def test_account_input_is_checked(client: httpx.AsyncClient) -> None:
    admin = await login(client, "quantri")
    station = await _organization_id(client, admin, "82103")
    base = {
        "username": "bs.kiemtra",
        "password": "Mat-khau-bs-moi-2026",
        "display_name": "BS. Kiểm Tra",
        "role": "requester",
        "organization_id": station,
    }
    cases = {
        "password": {"password": "123"},
        "username": {"username": "Has Spaces"},
        "role": {"role": "king"},
        "organization_id": {"organization_id": "00000000-0000-4000-8000-000000000000"},
    }
    for field, change in cases.items():
        response = await client.post("/api/admin/accounts", json=base | change, headers=admin)
        assert response.status_code in (400, 422), response.text
        assert_problem(response, response.status_code, field=field)
    weak = await client.patch(
        f"/api/admin/accounts/{(await client.get('/api/auth/me', headers=admin)).json()['id']}",
        json={"new_password": "abc"},
        headers=admin,
    )
    assert_problem(weak, 422, field="new_password")
    missing = await client.patch(
        "/api/admin/accounts/00000000-0000-4000-8000-000000000000",
        json={"active": False},
        headers=admin,
    )
    assert_problem(missing, 404)


async def test_only_administrators_manage_accounts(client: httpx.AsyncClient) -> None:
    for username in ("bs.xa1", "bs.tim", "dieuphoi"):
        headers = await login(client, username)
        assert_problem(await client.get("/api/admin/accounts", headers=headers), 403)
        created = await client.post(
            "/api/admin/clients",
            json={"client_id": "sneaky", "name": "x", "scopes": "system/*.cruds"},
            headers=headers,
        )
        assert_problem(created, 403)
        me = (await client.get("/api/auth/me", headers=headers)).json()
        escalate = await client.patch(
            f"/api/admin/accounts/{me['id']}", json={"role": "administrator"}, headers=headers
        )
        assert_problem(escalate, 403)


async def test_client_credentials_by_form_and_by_basic(client: httpx.AsyncClient) -> None:
    for response in (await _client_token(client), await _client_token(client, basic=True)):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["refresh_token"] is None
        assert "system/Patient.rs" in body["scope"].split()
        assert body["identity"]["kind"] == "client"


async def test_wrong_client_secret_is_refused(client: httpx.AsyncClient) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": "guess",
    }
    assert_problem(await client.post(TOKEN, data=form), 401)
    unknown = form | {"client_id": "nobody", "client_secret": DEMO_CLIENT_SECRET}
    assert_problem(await client.post(TOKEN, data=unknown), 401)
    assert_problem(await client.post(TOKEN, data=form | {"grant_type": "password"}), 400)
    garbled = {"Authorization": "Basic ***not-base64***"}
    assert_problem(
        await client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=garbled),
        401,
    )


async def test_scopes_narrow_and_over_asking_is_refused(client: httpx.AsyncClient) -> None:
    narrowed = await _client_token(client, "system/Patient.read")
    assert narrowed.json()["scope"] == "system/Patient.rs"
    assert_problem(await _client_token(client, "system/Patient.cruds"), 422, field="scope")
    assert_problem(await _client_token(client, "system/Appointment.rs"), 422, field="scope")
    assert_problem(await _client_token(client, "patient/Patient.rs"), 422, field="scope")

    only_orgs = _bearer(await _client_token(client, "system/Organization.rs"))
    assert_problem(await client.get("/api/patients", headers=only_orgs), 403)
    assert (await client.get("/api/organizations", headers=only_orgs)).status_code == 200
    assert_problem(await client.get("/api/practitioners", headers=only_orgs), 403)


async def test_client_with_patient_scope_searches_patients_of_every_facility(
    client: httpx.AsyncClient,
) -> None:
    headers = _bearer(await _client_token(client))
    found = await client.get("/api/patients", params={"limit": 200}, headers=headers)
    assert found.status_code == 200
    facilities = {p["organization_id"] for p in found.json()["items"]}
    assert len(facilities) == 8  # six commune stations and two district centres
    patient = found.json()["items"][0]
    assert (await client.get(f"/api/patients/{patient['id']}", headers=headers)).status_code == 200
    # read and search only: no updates, no registrations
    update = await client.patch(
        f"/api/patients/{patient['id']}", json={"address": "Ấp 2"}, headers=headers
    )
    assert_problem(update, 403)


async def test_clients_cannot_manage_accounts(client: httpx.AsyncClient) -> None:
    headers = _bearer(await _client_token(client))
    assert_problem(await client.get("/api/admin/accounts", headers=headers), 403)
    assert_problem(await client.get("/api/admin/audit", headers=headers), 403)
    assert_problem(
        await client.post(
            "/api/auth/password",
            json={"current_password": "x", "new_password": "Brand-new-pass-42"},
            headers=headers,
        ),
        403,
    )


async def test_admin_creates_a_client_whose_secret_works_once_shown(
    client: httpx.AsyncClient,
) -> None:
    admin = await login(client, "quantri")
    spec = {"client_id": "pacs-bvdk", "name": "PACS", "scopes": "system/Patient.read"}
    created = await client.post("/api/admin/clients", json=spec, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["scopes"] == "system/Patient.rs"
    assert_problem(await client.post("/api/admin/clients", json=spec, headers=admin), 409)
    bad = await client.post(
        "/api/admin/clients",
        json=spec | {"client_id": "bad-scopes", "scopes": "everything please"},
        headers=admin,
    )
    assert_problem(bad, 422, field="scopes")
    token = await client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": "pacs-bvdk",
            "client_secret": body["client_secret"],
        },
    )
    assert (await client.get("/api/patients", headers=_bearer(token))).status_code == 200
