"""The PostgreSQL Channels backend: two instances (as two processes would hold) exchange small
and large payloads, and delivery resumes after the listener connection is killed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.channels import ChannelsPlugin

from telehealth.events import (
    LISTENER_NAME,
    PostgresChannelsBackend,
    asyncpg_dsn,
    publish_to_user,
    user_channel,
)


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
async def pair(database_url: str) -> AsyncIterator[tuple[PostgresChannelsBackend, ...]]:
    dsn = asyncpg_dsn(database_url)
    one, two = PostgresChannelsBackend(dsn, reconnect_delay_s=0.2), PostgresChannelsBackend(dsn)
    await one.on_startup()
    await two.on_startup()
    yield one, two
    await one.on_shutdown()
    await two.on_shutdown()


async def _next(backend: PostgresChannelsBackend) -> tuple[str, bytes]:
    async with asyncio.timeout(10):
        async for item in backend.stream_events():
            return item
    raise AssertionError("stream ended")


async def test_small_and_large_payloads_cross_instances(
    pair: tuple[PostgresChannelsBackend, PostgresChannelsBackend],
) -> None:
    listener, publisher = pair
    await listener.subscribe(["room.a"])
    await publisher.publish(b'{"kind":"small"}', ["room.a", "room.other"])
    assert await _next(listener) == ("room.a", b'{"kind":"small"}')
    large = ("x" * 50_000).encode()  # over NOTIFY's 8000-byte limit
    await publisher.publish(large, ["room.a"])
    assert await _next(listener) == ("room.a", large)


async def test_listener_reconnects_after_its_connection_dies(
    pair: tuple[PostgresChannelsBackend, PostgresChannelsBackend], database_url: str
) -> None:
    listener, publisher = pair
    await listener.subscribe(["user.1"])
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            LISTENER_NAME,
        )
        assert killed == 2
    finally:
        await admin.close()
    # Publish until one arrives: the listener comes back on its own, with its channels.
    received = asyncio.create_task(_next(listener))
    for _ in range(100):
        await publisher.publish(b"after", ["user.1"])
        await asyncio.wait({received}, timeout=0.1)
        if received.done():
            break
    assert received.result() == ("user.1", b"after")


async def test_user_updates_reach_the_users_channel(
    pair: tuple[PostgresChannelsBackend, PostgresChannelsBackend],
) -> None:
    listener, publisher = pair
    user, subject = uuid.uuid4(), uuid.uuid4()
    await listener.subscribe([user_channel(user)])
    plugin = ChannelsPlugin(backend=publisher, arbitrary_channels_allowed=True)
    await publish_to_user(plugin, user, "appointment.booked", subject)
    channel, payload = await _next(listener)
    assert channel == f"user.{user}"
    assert json.loads(payload) == {"kind": "appointment.booked", "subject_id": str(subject)}
