"""The PostgreSQL Channels backend: two instances (as two processes would hold) exchange small
and large payloads, and delivery resumes after the listener connection is killed; a page
reload (one socket closes as the next opens) loses no live update, on every backend."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from litestar.channels import ChannelsPlugin

from telehealth.http.channels import (
    LISTENER_NAME,
    CountedSubscriptions,
    PostgresChannelsBackend,
    create_channels,
)
from telehealth.pubsub import asyncpg_dsn, publish_to_user, user_channel
from telehealth.settings import Settings
from tests.helpers import REDIS_URL, redis_reachable


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def database_url(private_database_url: str) -> str:
    """A database of its own: the tests count the listeners connected to it."""
    return private_database_url


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


async def _received(queue: asyncio.Queue[bytes]) -> bytes | None:
    try:
        return await asyncio.wait_for(queue.get(), 2)
    except TimeoutError:
        return None


@pytest.mark.parametrize("kind", ["memory", "postgres", "redis"])
async def test_a_late_unsubscribe_does_not_silence_the_next_page(
    kind: str, database_url: str, tmp_path: Path
) -> None:
    """The race of a page reload: the old page's socket unsubscribes (its last subscriber, so
    the plugin means to drop the channel) and, while the plugin stops the old subscriber's
    task, the new page subscribes; the backend then gets subscribe before unsubscribe."""
    if kind == "redis" and not await redis_reachable():
        pytest.skip("Redis not reachable")
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        channels_backend=kind,
        redis_url=REDIS_URL if kind == "redis" else "",
    )
    plugin = create_channels(settings)
    channel = user_channel(uuid.uuid4())
    async with plugin:
        old = await plugin.subscribe([channel])
        old_events: asyncio.Queue[bytes] = asyncio.Queue()
        async with old.run_in_background(old_events.put):
            leaving = asyncio.create_task(plugin.unsubscribe(old, [channel]))
            await asyncio.sleep(0)  # the plugin has decided, and now awaits the old task
            new = await plugin.subscribe([channel])
            await leaving
        events: asyncio.Queue[bytes] = asyncio.Queue()
        async with new.run_in_background(events.put):
            await plugin.wait_published(b"after the reload", [channel])
            assert await _received(events) == b"after the reload"
        await plugin.unsubscribe(new)


async def test_pages_reloading_while_the_listener_is_checked_miss_nothing(
    database_url: str,
) -> None:
    """Page after page of one person (a socket opens, the previous one closes) while the
    listener's health check runs often: the check used to overlap a LISTEN on the same
    connection, fail one of them and drop a channel (or the whole listener) for a while."""
    backend = PostgresChannelsBackend(asyncpg_dsn(database_url), reconnect_delay_s=0.005)
    plugin = ChannelsPlugin(backend=CountedSubscriptions(backend), arbitrary_channels_allowed=True)
    missed = []
    async with plugin:
        previous: tuple[asyncio.Event, asyncio.Task[None]] | None = None
        for visit in range(60):
            channel = user_channel(uuid.UUID(int=visit % 3))
            events: asyncio.Queue[bytes] = asyncio.Queue()
            ready, leave = asyncio.Event(), asyncio.Event()

            async def open_page(
                channel: str = channel,
                events: asyncio.Queue[bytes] = events,
                ready: asyncio.Event = ready,
                leave: asyncio.Event = leave,
            ) -> None:
                async with (
                    plugin.start_subscription([channel]) as subscriber,
                    subscriber.run_in_background(events.put),
                ):
                    ready.set()
                    await leave.wait()

            page = asyncio.create_task(open_page())
            if previous is not None:
                previous[0].set()
                await previous[1]
            await asyncio.wait_for(ready.wait(), 10)
            await plugin.wait_published(f"visit {visit}".encode(), [channel])
            if await _received(events) is None:
                missed.append(visit)
            previous = (leave, page)
        assert previous is not None
        previous[0].set()
        await previous[1]
    assert missed == []
