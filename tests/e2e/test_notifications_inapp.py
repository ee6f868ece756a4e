"""In-app notifications as people get them: pushed live over a real WebSocket by the
server's own delivery loop, listed and marked read through the API by their recipient only."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets
from sqlmodel import select

from telehealth.auth.models import UserAccount
from telehealth.db import Database
from telehealth.notifications.models import DeliveryState, Notification
from telehealth.notifications.service import notify
from telehealth.settings import Settings
from tests.conftest import RunningServer
from tests.helpers import assert_problem, login


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The server runs its scheduler here, polling often."""
    return settings.model_copy(update={"scheduler_enabled": True, "timer_poll_s": 0.1})


async def account_id(db: Database, username: str) -> uuid.UUID:
    async with db.unit_of_work() as session:
        account = (
            await session.exec(select(UserAccount).where(UserAccount.username == username))
        ).one()
        return account.id


async def queue(db: Database, username: str, kind: str, params: dict[str, object]) -> uuid.UUID:
    recipient = await account_id(db, username)
    async with db.unit_of_work() as session:
        return notify(session, kind, recipient_id=recipient, params=params).id


async def test_pushed_live_to_the_recipients_open_page_only(
    server: RunningServer, client: httpx.AsyncClient, db: Database
) -> None:
    tim = (await login(client, "bs.tim"))["Authorization"].split()[1]
    nhi = (await login(client, "bs.nhi"))["Authorization"].split()[1]
    base = server.url.replace("http://", "ws://")
    async with (
        websockets.connect(f"{base}/api/notifications/live?access_token={tim}") as tim_page,
        websockets.connect(f"{base}/api/notifications/live?access_token={nhi}") as nhi_page,
    ):
        sent = await queue(db, "bs.tim", "room.open", {"start_at": "2026-11-25T03:00:00+00:00"})
        event = json.loads(await asyncio.wait_for(tim_page.recv(), timeout=30))
        assert event == {"kind": "room.open", "id": str(sent)}
        # bs.nhi's page got nothing: a marker sent to her afterwards is the first she sees.
        marker = await queue(db, "bs.nhi", "appointment.booked", {})
        first = json.loads(await asyncio.wait_for(nhi_page.recv(), timeout=30))
        assert first["id"] == str(marker)
    async with db.unit_of_work() as session:
        row = await session.get(Notification, sent)
    assert row is not None and row.state == DeliveryState.SENT


async def test_websocket_needs_a_valid_token(server: RunningServer) -> None:
    base = server.url.replace("http://", "ws://")
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(f"{base}/api/notifications/live?access_token=forged") as page:
            await asyncio.wait_for(page.recv(), timeout=30)


async def test_listed_and_marked_read_by_the_recipient_only(
    client: httpx.AsyncClient, db: Database
) -> None:
    sent = await queue(
        db,
        "bs.tim",
        "appointment.reminder",
        {"start_at": "2026-11-25T03:00:00+00:00", "lead_minutes": 15},
    )
    tim = await login(client, "bs.tim")
    nhi = await login(client, "bs.nhi")

    mine = (await client.get("/api/notifications", headers=tim)).json()
    assert [n["id"] for n in mine] == [str(sent)]
    assert mine[0]["title"] == "Nhắc lịch hội chẩn"
    assert "10:00 ngày 25/11/2026" in mine[0]["body"]
    assert mine[0]["read_at"] is None
    assert (await client.get("/api/notifications", headers=nhi)).json() == []

    assert_problem(await client.post(f"/api/notifications/{sent}/read", headers=nhi), 404)
    assert (await client.get("/api/notifications?unread=true", headers=tim)).json() != []

    marked = await client.post(f"/api/notifications/{sent}/read", headers=tim)
    assert marked.status_code == 204, marked.text
    assert (await client.get("/api/notifications?unread=true", headers=tim)).json() == []
    again = (await client.get("/api/notifications", headers=tim)).json()
    assert again[0]["read_at"] is not None


async def test_english_for_people_who_chose_it(client: httpx.AsyncClient, db: Database) -> None:
    admin = await login(client, "quantri")
    tim_id = await account_id(db, "bs.tim")
    changed = await client.patch(
        f"/api/admin/accounts/{tim_id}", json={"language": "en"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    await queue(db, "bs.tim", "room.open", {"start_at": "2026-11-25T03:00:00+00:00"})
    tim = await login(client, "bs.tim")
    (note,) = (await client.get("/api/notifications", headers=tim)).json()
    assert note["title"] == "Consult room open"
    assert "25/11/2026 10:00" in note["body"]


async def test_system_clients_have_no_inbox(client: httpx.AsyncClient) -> None:
    token = await client.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "his-bvdk-dongthap",
            "client_secret": "demo-client-secret",
        },
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert_problem(await client.get("/api/notifications", headers=headers), 403)
