"""No token reaches the service's log (issue 13, hole 11): a real `telehealth serve` process
at the level operators run it, everything it writes captured, while participants join a room
and a page listens for live updates."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import websockets

from telehealth.db import Database
from telehealth.settings import Settings
from tests.e2e.service_process import serve
from tests.helpers import login
from tests.rtc_client import SignallingClient
from tests.rtc_support import join_token, loopback_ice, make_room


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


async def test_no_token_reaches_the_log(db: Database, settings: Settings, tmp_path: Path) -> None:
    made = await make_room(db, settings)
    log = tmp_path / "service.log"
    secrets: list[str] = []
    async with serve(settings, tmp_path / "data", {"TELEHEALTH_LOG_LEVEL": "INFO"}, log=log) as (
        url,
        _process,
    ):
        ws = url.replace("http", "ws", 1)
        async with httpx.AsyncClient(base_url=url) as http:
            headers = await login(http, "bs.xa1")
            token = await join_token(http, made.room_id, "bs.xa1")
            precall = SignallingClient(f"{ws}/ws/rooms/{made.room_id}", token, precall=True)
            await precall.connect()
            await precall.expect("welcome")
            await precall.close()
            live = SignallingClient(f"{ws}/ws/rooms/{made.room_id}", token)
            await live.connect()
            welcome = await live.expect("welcome")
            await live.send({"type": "refresh"})
            fresh = await live.expect("token")
            await live.send({"type": "leave"})
            await live.closed()
            # The live-update socket of the pages, authenticated by an access token.
            access = headers["Authorization"].split()[1]
            async with websockets.connect(f"{ws}/ws/updates?access_token={access}") as updates:
                assert '"ready"' in str(await updates.recv())
        secrets += [token, welcome["token"], fresh["token"], access]
    written = log.read_text()
    assert f"/ws/rooms/{made.room_id}" in written  # the log was captured, connections in it
    for secret in secrets:
        assert secret not in written
        assert secret.rsplit(".", 1)[-1] not in written  # not even its signature
