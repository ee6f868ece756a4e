"""Relay through the service's aiortc peer for participants who cannot reach each other, with
a plain refusal past the configured capacity."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from telehealth.db import Database
from telehealth.rtc.models import ParticipantRole, Room
from telehealth.rtc.service import ParticipantSpec, open_room_for
from telehealth.settings import Settings
from tests.conftest import RunningServer
from tests.rtc_client import MediaLeg, SignallingClient
from tests.rtc_support import join_token, loopback_ice, make_room, user_id


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key="test-signing-key-" + "x" * 32,
        media_capacity=2,
    )


async def _connect(
    server: RunningServer, client: httpx.AsyncClient, room_id: uuid.UUID, username: str
) -> SignallingClient:
    token = await join_token(client, room_id, username)
    signalling = SignallingClient(
        f"{server.url.replace('http', 'ws', 1)}/ws/rooms/{room_id}", token
    )
    await signalling.connect()
    await signalling.expect("welcome")
    return signalling


async def test_relay_forwards_media_and_refuses_past_capacity(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    third = await user_id(db, "bs.nhi")
    async with db.unit_of_work() as session:
        room = await session.get(Room, made.room_id)
        assert room is not None
        await open_room_for(
            session,
            made.appointment_id,
            [ParticipantSpec(third, ParticipantRole.INVITED)],
            room.starts_at,
            room.ends_at,
        )
    a = await _connect(server, client, made.room_id, "bs.xa1")
    b = await _connect(server, client, made.room_id, "bs.tim")
    c = await _connect(server, client, made.room_id, "bs.nhi")
    leg_a, leg_b = MediaLeg(a, []), MediaLeg(b, [])
    assert (await leg_a.start("relay_offer", "relay_answer"))["type"] == "relay_answer"
    assert (await leg_b.start("relay_offer", "relay_answer"))["type"] == "relay_answer"
    # Each receives the other's video through the service, re-encoded by aiortc.
    assert await leg_a.wait_frames(20) >= 20
    assert await leg_b.wait_frames(20) >= 20

    leg_c = MediaLeg(c, [])
    refused = await leg_c.start("relay_offer", "relay_answer")
    assert refused["type"] == "error" and refused["reason"] == "capacity"
    await leg_c.close()

    # The specialist drops and relays again: the requester's leg picks the new source up.
    await leg_b.close()
    await b.close()
    b = await _connect(server, client, made.room_id, "bs.tim")
    leg_b = MediaLeg(b, [])
    assert (await leg_b.start("relay_offer", "relay_answer"))["type"] == "relay_answer"
    before = leg_a.frames
    assert await leg_a.wait_frames(before + 20) >= before + 20
    for leg in (leg_a, leg_b):
        await leg.close()
    for signalling in (a, b, c):
        await signalling.close()
