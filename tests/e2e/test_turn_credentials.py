"""TURN REST credentials against a real coturn (use-auth-secret) on loopback: the credentials
the service hands out get a relay allocation; expired or forged ones are refused."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import aioice
import pytest

from telehealth.rtc.credentials import turn_credentials
from telehealth.timeutil import utcnow
from tests.e2e.conftest import ONE_AT_A_TIME
from tests.e2e.netns import unavailable
from tests.e2e.test_room_page import TURN_SECRET, coturn_command
from tests.rtc_support import loopback_ice

# With the room-page tests: their coturn and chromium would otherwise compete with this one's
# coturn, whose allocation aioice waits for only 5 s (and then silently gathers no relay).
pytestmark = ONE_AT_A_TIME


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def coturn() -> AsyncIterator[int]:
    if shutil.which("turnserver") is None:
        unavailable("coturn is not installed (apt-get install coturn)")
    port = free_udp_port()
    command = [
        arg if not arg.startswith("--listening-port") else f"--listening-port={port}"
        for arg in coturn_command([])
    ]
    command = [a for a in command if not a.startswith(("--min-port", "--max-port"))]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while b"Total General servers" not in await process.stdout.readline():
            pass
    yield port
    process.terminate()
    await process.wait()


async def _relay_candidates(port: int, username: str, password: str) -> list[str]:
    connection = aioice.Connection(
        ice_controlling=True,
        turn_server=("127.0.0.1", port),
        turn_username=username,
        turn_password=password,
        use_ipv6=False,
    )
    try:
        await connection.gather_candidates()
        return [c.type for c in connection.local_candidates if c.type == "relay"]
    except Exception as exc:  # aioice raises when the TURN server refuses the allocation
        return [f"refused: {exc}"]
    finally:
        await connection.close()


async def test_fresh_credentials_allocate_expired_ones_do_not(
    coturn: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopback_ice(monkeypatch)
    fresh = turn_credentials(TURN_SECRET, "participant-1", utcnow() + timedelta(minutes=10))
    assert await _relay_candidates(coturn, *fresh) == ["relay"]

    expired = turn_credentials(TURN_SECRET, "participant-1", utcnow() - timedelta(seconds=5))
    refused = await _relay_candidates(coturn, *expired)
    assert "relay" not in refused, refused  # coturn answers 401: no allocation

    forged = turn_credentials("not-the-secret", "participant-1", utcnow() + timedelta(minutes=10))
    assert "relay" not in await _relay_candidates(coturn, *forged)
