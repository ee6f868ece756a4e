"""Two `telehealth serve` processes on one PostgreSQL: a room's relay lives in exactly one of
them, whichever process each participant's signalling reaches; when that process is killed
(SIGKILL), the relay moves to the survivor once the lease has expired."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from telehealth.db import Database
from telehealth.pubsub import asyncpg_dsn
from telehealth.settings import Settings
from tests.e2e.conftest import ONE_AT_A_TIME
from tests.e2e.service_process import serve
from tests.rtc_client import MediaLeg, SignallingClient
from tests.rtc_support import join_token, loopback_ice, make_room

pytestmark = [pytest.mark.slow, ONE_AT_A_TIME]
LEASE_S = 6.0
ENV = {
    "TELEHEALTH_CHANNELS_BACKEND": "postgres",
    "TELEHEALTH_RELAY_LEASE_S": str(LEASE_S),
    "TELEHEALTH_RELAY_FORWARD_TIMEOUT_S": "1",
}


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def _signalling(url: str, room_id: uuid.UUID, token: str) -> SignallingClient:
    client = SignallingClient(f"{url.replace('http', 'ws', 1)}/ws/rooms/{room_id}", token)
    await client.connect()
    await client.expect("welcome")
    return client


async def _lease_owners(settings: Settings, room_id: uuid.UUID) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(settings.resolved_database_url))
    try:
        rows = await connection.fetch("SELECT owner FROM relay_lease WHERE room_id = $1", room_id)
    finally:
        await connection.close()
    return [row["owner"] for row in rows]


def _pid_of(owner: str) -> int:
    return int(owner.split(":")[-2])  # host:pid:tag


async def test_one_relay_per_room_and_it_moves_when_its_process_dies(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    made = await make_room(db, settings)
    async with (
        serve(settings, tmp_path / "one", ENV) as (one, first),
        serve(settings, tmp_path / "two", ENV) as (two, second),
        httpx.AsyncClient(base_url=two) as http,
    ):
        token_a = await join_token(http, made.room_id, "bs.xa1")
        token_b = await join_token(http, made.room_id, "bs.tim")
        a = await _signalling(one, made.room_id, token_a)
        b = await _signalling(two, made.room_id, token_b)
        leg_a, leg_b = MediaLeg(a, []), MediaLeg(b, [])
        legs = [leg_a, leg_b]
        try:
            assert (await leg_a.start("relay_offer", "relay_answer"))["type"] == "relay_answer"
            # The specialist's offer reaches process two, which forwards it to the owner.
            assert (await leg_b.start("relay_offer", "relay_answer"))["type"] == "relay_answer"
            owners = await _lease_owners(settings, made.room_id)
            assert [_pid_of(o) for o in owners] == [first.pid]
            # Both legs are on process one: each gets the other's video through it.
            assert await leg_a.wait_frames(20) >= 20
            assert await leg_b.wait_frames(20) >= 20

            first.send_signal(signal.SIGKILL)
            await first.wait()
            killed_at = time.monotonic()
            await leg_a.close()
            await leg_b.close()
            # The lease still names the dead process: a forwarded offer goes unanswered.
            leg_b = MediaLeg(b, [])
            legs.append(leg_b)
            refused = await leg_b.start("relay_offer", "relay_answer")
            assert refused["type"] == "error", refused
            assert refused["reason"] == "relay_unavailable"

            # The requester comes back through the survivor; after the lease expires, the
            # next offer there takes the relay over.
            a = await _signalling(two, made.room_id, token_a)
            while True:
                leg_a = MediaLeg(a, [])
                legs.append(leg_a)
                reply = await leg_a.start("relay_offer", "relay_answer")
                if reply["type"] == "relay_answer":
                    break
                assert reply["reason"] == "relay_unavailable", reply
                assert time.monotonic() - killed_at < LEASE_S + 10
                await leg_a.close()
                await asyncio.sleep(0.5)
            assert time.monotonic() - killed_at >= LEASE_S * 2 / 3  # not before it expired
            leg_b = MediaLeg(b, [])
            legs.append(leg_b)
            assert (await leg_b.start("relay_offer", "relay_answer"))["type"] == "relay_answer"
            owners = await _lease_owners(settings, made.room_id)
            assert [_pid_of(o) for o in owners] == [second.pid]
            assert await leg_a.wait_frames(20) >= 20
            assert await leg_b.wait_frames(20) >= 20
        finally:
            for leg in legs:
                await leg.close()
            for client in (a, b):
                await client.close()
