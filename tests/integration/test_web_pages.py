"""Pages over plain HTTP: editing a patient, practitioner roles, unlocking an account."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import pytest
import websockets
from litestar.channels import ChannelsPlugin

from telehealth.pubsub import user_channel
from tests.conftest import RunningServer
from tests.helpers import login
from tests.integration.test_web_session import csrf_token, page_login

NEW_PATIENT = {
    "full_name": "Lê Văn Tám",
    "gender": "male",
    "birth_date": "1990-05-01",
    "national_id": "082090001111",
    "phone": "0912 345 678",
}


async def test_edit_patient_clears_optional_fields_and_keeps_the_rest(
    client: httpx.AsyncClient,
) -> None:
    headers = await login(client, "bs.xa1")
    created = (await client.post("/api/patients", json=NEW_PATIENT, headers=headers)).json()
    assert (await page_login(client, "bs.xa1")).status_code == 303
    form_page = await client.get(f"/patients/{created['id']}/edit")
    assert 'value="Lê Văn Tám"' in form_page.text
    token = await csrf_token(client, f"/patients/{created['id']}/edit")
    saved = await client.post(
        f"/patients/{created['id']}/edit",
        data={**NEW_PATIENT, "full_name": "Lê Văn Tám Em", "phone": "", "_csrf_token": token},
    )
    assert saved.status_code == 303, saved.text
    after = (await client.get(f"/api/patients/{created['id']}", headers=headers)).json()
    assert after["full_name"] == "Lê Văn Tám Em"
    assert after["phone"] is None
    assert after["national_id"] == "082090001111"

    bad = await client.post(
        f"/patients/{created['id']}/edit",
        data={**NEW_PATIENT, "national_id": "082091001111", "_csrf_token": token},
    )
    assert bad.status_code == 422
    assert "Số CCCD ứng với năm sinh 1991" in bad.text
    assert 'value="082091001111"' in bad.text


async def test_admin_adds_a_practitioner_and_a_role(client: httpx.AsyncClient) -> None:
    assert (await page_login(client, "quantri")).status_code == 303
    token = await csrf_token(client, "/admin/practitioners/new")
    created = await client.post(
        "/admin/practitioners/new",
        data={"_csrf_token": token, "full_name": "BS. Mai Thị Hoa", "gender": "female"},
    )
    assert created.status_code == 303
    detail_path = created.headers["location"]
    detail = await client.get(detail_path)
    facility = re.search(
        r'<option value="([0-9a-f-]{36})"[^>]*>Trạm Y tế phường Mỹ Phong', detail.text
    )
    assert facility, detail.text
    added = await client.post(
        f"{detail_path}/roles",
        data={"_csrf_token": token, "organization_id": facility.group(1), "specialty_code": ""},
    )
    assert added.status_code == 303
    assert "Trạm Y tế phường Mỹ Phong — đa khoa" in (await client.get(detail_path)).text
    again = await client.post(
        f"{detail_path}/roles",
        data={"_csrf_token": token, "organization_id": facility.group(1)},
    )
    assert again.status_code == 422
    assert "Nhân viên đã có vai trò này tại cơ sở này" in again.text

    edit = f"{detail_path}/edit"
    assert 'value="BS. Mai Thị Hoa"' in (await client.get(edit)).text
    bad = await client.post(
        edit, data={"_csrf_token": token, "full_name": "BS. Mai Thị Hoa", "email": "not-an-email"}
    )
    assert bad.status_code == 422
    assert re.search(r'data-error-for="email">sai định dạng<', bad.text), bad.text
    assert 'value="not-an-email"' in bad.text
    renamed = await client.post(
        edit, data={"_csrf_token": token, "full_name": "BS.CKI Mai Thị Hoa", "gender": "female"}
    )
    assert renamed.status_code == 303
    assert "<h1>BS.CKI Mai Thị Hoa</h1>" in (await client.get(detail_path)).text


async def test_admin_unlocks_a_locked_account(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await client.post("/api/auth/login", json={"username": "bs.xa4", "password": "wrong"})
    locked = await client.post(
        "/api/auth/login", json={"username": "bs.xa4", "password": "telehealth-demo-only"}
    )
    assert locked.status_code == 401
    assert (await page_login(client, "quantri")).status_code == 303
    listing = await client.get("/admin/accounts")
    row = re.search(r'id="account-bs\.xa4">(.*?)</tr>', listing.text, re.S)
    assert row and "bị khóa đến" in row.group(1)
    unlock = re.search(r'action="(/admin/accounts/[0-9a-f-]+/unlock)"', row.group(1))
    assert unlock
    token = await csrf_token(client, "/admin/accounts")
    assert (await client.post(unlock.group(1), data={"_csrf_token": token})).status_code == 303
    unlocked = await client.post(
        "/api/auth/login", json={"username": "bs.xa4", "password": "telehealth-demo-only"}
    )
    assert unlocked.status_code == 200


async def test_admin_moves_a_facility_and_the_hierarchy_is_enforced(
    client: httpx.AsyncClient,
) -> None:
    assert (await page_login(client, "quantri")).status_code == 303
    tree = (await client.get("/admin/facilities")).text
    ids = dict(
        (name, uid)
        for uid, name in re.findall(r'href="/admin/facilities/([0-9a-f-]{36})/edit">([^<]+)<', tree)
    )
    station = ids["Trạm Y tế phường Mỹ Phong"]
    edit = f"/admin/facilities/{station}/edit"
    token = await csrf_token(client, edit)
    form = {"_csrf_token": token, "name": "Trạm Y tế phường Mỹ Phong", "level": "commune"}
    moved = await client.post(
        edit, data={**form, "parent_id": ids["Trung tâm Y tế khu vực Gò Công"], "active": "true"}
    )
    assert moved.status_code == 303
    refused = await client.post(
        edit,
        data={**form, "level": "provincial", "parent_id": ids["Trung tâm Y tế khu vực Gò Công"]},
    )
    assert refused.status_code == 422
    assert "cơ sở tuyến provincial không thể trực thuộc cơ sở tuyến district" in refused.text
    assert 'value="provincial" selected' in refused.text


async def test_live_socket_needs_the_session_and_our_origin(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    ws_url = server.url.replace("http://", "ws://") + "/ws/updates"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(ws_url):
            pass
    assert (await page_login(client, "bs.xa1")).status_code == 303
    # As a browser sends them: the session and the moment of its last page (the idle rule).
    cookie = f"th_access={client.cookies.get('th_access')}; th_seen={client.cookies.get('th_seen')}"
    host = server.url.removeprefix("http://")
    async with websockets.connect(
        ws_url, additional_headers={"Cookie": cookie}, origin=f"http://{host}"
    ) as socket:
        assert json.loads(await socket.recv()) == {"kind": "ready"}
        # What other areas publish to the person's channel reaches the page; others' does not.
        me = (await client.get("/api/auth/me", headers=await login(client, "bs.xa1"))).json()
        assert server.app is not None
        channels = server.app.plugins.get(ChannelsPlugin)
        channels.publish({"kind": "other", "id": "x"}, user_channel(uuid.uuid4()))
        channels.publish({"kind": "reminder", "id": "c1"}, user_channel(uuid.UUID(me["id"])))
        event = await asyncio.wait_for(socket.recv(), 5)
        assert json.loads(event) == {"kind": "reminder", "id": "c1"}
    # A page of another site cannot open it with the browser's cookie.
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            ws_url, additional_headers={"Cookie": cookie}, origin="http://evil.example"
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_the_pages_name_an_icon_and_favicon_ico_leads_to_it(
    client: httpx.AsyncClient,
) -> None:
    login_page = await client.get("/login")
    assert '<link rel="icon" href="/static/favicon.svg"' in login_page.text
    old_path = await client.get("/favicon.ico", follow_redirects=True)
    assert old_path.status_code == 200
    assert old_path.headers["content-type"].startswith("image/svg+xml")
    assert old_path.text.startswith("<svg")
