"""Two `telehealth serve` processes on one PostgreSQL: participants on different processes
see each other, exchange media, and keep signalling after the listener connection is killed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest

from telehealth.db import Database
from telehealth.http.channels import LISTENER_NAME
from telehealth.pubsub import asyncpg_dsn
from telehealth.settings import Settings
from tests.e2e.conftest import ONE_AT_A_TIME
from tests.e2e.service_process import serve
from tests.helpers import REDIS_URL, login, redis_reachable
from tests.rtc_client import Participant, SignallingClient
from tests.rtc_support import join_token, loopback_ice, make_room

pytestmark = [pytest.mark.slow, ONE_AT_A_TIME]


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def database_url(private_database_url: str) -> str:
    """A database of its own: the test counts the listener connections to it."""
    return private_database_url


async def resumed(sender: SignallingClient, receiver: SignallingClient) -> None:
    """Send until one message gets through (bounded)."""
    for _ in range(100):
        await sender.send({"type": "mute", "audio": False, "video": False})
        try:
            await receiver.expect("mute", within_s=0.3)
            return
        except TimeoutError:
            continue
    raise AssertionError("signalling did not resume after the listener reconnected")


@pytest.mark.parametrize("channels", ["postgres", "redis"])
async def test_participants_on_two_processes(
    channels: str, db: Database, settings: Settings, tmp_path: Path
) -> None:
    env = {"TELEHEALTH_CHANNELS_BACKEND": channels}
    if channels == "redis":
        if not await redis_reachable():
            pytest.skip("no Redis at 127.0.0.1:6379")
        env["TELEHEALTH_REDIS_URL"] = REDIS_URL
    made = await make_room(db, settings)
    async with (
        serve(settings, tmp_path / "one", env) as (one, _p1),
        serve(settings, tmp_path / "two", env) as (two, _p2),
        httpx.AsyncClient(base_url=one) as http,
    ):
        a = Participant(one, str(made.room_id), await join_token(http, made.room_id, "bs.xa1"))
        b = Participant(two, str(made.room_id), await join_token(http, made.room_id, "bs.tim"))
        try:
            await a.join()
            await b.join()
            assert await a.wait_frames(str(made.specialist), 10) >= 10
            assert await b.wait_frames(str(made.requester), 10) >= 10

            if channels == "postgres":
                # Kill every listener connection; the processes reconnect and re-LISTEN.
                dsn = asyncpg_dsn(settings.resolved_database_url)
                admin = await asyncpg.connect(dsn)
                try:
                    killed = await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = $1 AND datname = current_database()",
                        LISTENER_NAME,
                    )
                    assert killed == 2
                    for _ in range(200):
                        back = await admin.fetchval(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE application_name = $1 AND datname = current_database()",
                            LISTENER_NAME,
                        )
                        if back == 2:
                            break
                        await asyncio.sleep(0.1)
                    assert back == 2
                finally:
                    await admin.close()
                # Messages published while a listener was down are lost; delivery resumes.
                await resumed(b.signalling, a.signalling)
                await resumed(a.signalling, b.signalling)

            # Signalling still crosses processes: the requester reconnects on process two
            # and gets media from the specialist again, who never re-joined.
            again = Participant(two, str(made.room_id), a.welcome["token"])
            await again.join()
            assert await a.signalling.closed() == 4000
            await a.drop()
            assert await again.wait_frames(str(made.specialist), 10) >= 10
            mute = {"type": "mute", "audio": False, "video": True}
            await b.signalling.send(mute)
            assert (await again.signalling.expect("mute"))["from"] == str(made.specialist)
            await again.leave()
        finally:
            await a.drop()
            await b.leave()


async def test_a_room_cancelled_on_one_process_ends_its_connections_on_the_other(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    made = await make_room(db, settings)
    async with (
        serve(settings, tmp_path / "one", {}) as (one, _p1),
        serve(settings, tmp_path / "two", {}) as (two, _p2),
        httpx.AsyncClient(base_url=one) as http,
    ):
        token = await join_token(http, made.room_id, "bs.xa1")
        live = SignallingClient(f"{two.replace('http', 'ws', 1)}/ws/rooms/{made.room_id}", token)
        await live.connect()
        await live.expect("welcome")
        cancelled = await http.post(
            f"/api/appointments/{made.appointment_id}/cancel",
            json={"reason": "Bệnh nhân chuyển viện"},
            headers=await login(http, "dieuphoi"),
        )
        assert cancelled.status_code == 200, cancelled.text
        await live.expect("room_closed", within_s=10)
        assert await live.closed() == 4410
