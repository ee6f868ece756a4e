"""The litestar Channels plugin that carries cross-process events (signalling messages, live
page updates), and its backends. Built by ``create_app``; the core and the domain see it as a
``telehealth.pubsub.Broadcast`` and name channels with ``pubsub.room_channel`` and
``pubsub.user_channel``. Payloads are small (ids and kinds; the data stays in the database);
signalling SDP is the one exception and may reach a few KB.

Backends, chosen by ``TELEHEALTH_CHANNELS_BACKEND`` (``auto`` by default):

- ``memory``: single-process SQLite mode (auto when the database is SQLite and no Redis).
- ``redis``: litestar's Redis pub/sub backend on ``TELEHEALTH_REDIS_URL`` (auto when set).
- ``postgres``: :class:`PostgresChannelsBackend`, LISTEN/NOTIFY on the service's own database
  (auto on PostgreSQL). Litestar's bundled asyncpg backend opens a connection per publish,
  fails on payloads over 8000 bytes and stops delivering once its listener connection dies;
  this one publishes through a small pool, stores larger payloads in ``channel_spill`` and
  notifies their id, and reconnects its listener (re-LISTENing every channel) after a loss.

Every backend is wrapped in :class:`CountedSubscriptions`: the plugin decides to unsubscribe a
channel (its last subscriber left) before it awaits the leaving subscriber's task, so a page's
late unsubscribe could otherwise land after the next page's subscribe and silence the channel
for that new page until it reloads. Counting makes the two calls commute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable

import asyncpg
from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from telehealth.pubsub import Listener, asyncpg_dsn
from telehealth.settings import Settings

log = logging.getLogger("telehealth.events")

NOTIFY_LIMIT = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
_SPILL_MARK = "\x01spill:"
_SPILL_KEEP_S = 120
LISTENER_NAME = "telehealth-channels-listener"


async def _keep_as_is(_connection: asyncpg.Connection) -> None:
    """The publisher's connections only run ``pg_notify`` and spill rows in autocommit: no
    session state to reset, so a returned connection skips asyncpg's reset round trip
    (``RESET ALL; UNLISTEN *; ...``), one per published event."""


class PostgresChannelsBackend(ChannelsBackend):
    """LISTEN/NOTIFY with a pooled publisher and a listener that survives a lost connection."""

    def __init__(self, dsn: str, *, reconnect_delay_s: float = 1.0, pool_size: int = 4) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._listener = Listener(
            dsn, self._on_notify, name=LISTENER_NAME, reconnect_delay_s=reconnect_delay_s
        )
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def on_startup(self) -> None:
        self._queue = asyncio.Queue()
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=1, max_size=self._pool_size, reset=_keep_as_is
        )
        await self._listener.start()

    async def on_shutdown(self) -> None:
        await self._listener.stop()
        if self._pool is not None:
            await self._pool.close()

    def _on_notify(self, channel: str, text: str) -> None:
        if text.startswith(_SPILL_MARK):
            asyncio.get_running_loop().create_task(self._fetch_spill(channel, text))
            return
        self._queue.put_nowait((channel, text.encode()))

    async def _fetch_spill(self, channel: str, marker: str) -> None:
        assert self._pool is not None
        row = await self._pool.fetchval(
            "SELECT payload FROM channel_spill WHERE id = $1", int(marker[len(_SPILL_MARK) :])
        )
        if row is not None:
            self._queue.put_nowait((channel, str(row).encode()))

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        if self._pool is None:
            raise RuntimeError("channels backend not started")
        text = data.decode()
        async with self._pool.acquire() as connection:
            if len(data) < NOTIFY_LIMIT:
                # One round trip whatever the number of channels (a booking tells several).
                await connection.execute(
                    "SELECT pg_notify(c, $2) FROM unnest($1::text[]) AS c", list(channels), text
                )
                return
            for channel in channels:
                await connection.execute(
                    "WITH spill AS (INSERT INTO channel_spill (channel, payload, created_at) "
                    "VALUES ($1, $2, now()) RETURNING id) "
                    "SELECT pg_notify($1, $3 || spill.id::text) FROM spill",
                    channel,
                    text,
                    _SPILL_MARK,
                )
                await connection.execute(
                    "DELETE FROM channel_spill WHERE created_at < now() - make_interval(secs => $1)",
                    float(_SPILL_KEEP_S),
                )

    async def subscribe(self, channels: Iterable[str]) -> None:
        await self._listener.listen(channels)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        await self._listener.unlisten(channels)

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        while True:
            channel, payload = await self._queue.get()
            if channel in self._listener.channels:
                yield channel, payload

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        return []


class CountedSubscriptions(ChannelsBackend):
    """Any backend, subscribed to a channel as long as more subscriptions than
    unsubscriptions reached it, whatever order they arrive in; calls reach the wrapped backend
    one at a time, in the order the counts changed."""

    def __init__(self, backend: ChannelsBackend) -> None:
        self.backend = backend
        self._counts: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def on_startup(self) -> None:
        self._lock = asyncio.Lock()
        await self.backend.on_startup()

    async def on_shutdown(self) -> None:
        await self.backend.on_shutdown()

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        await self.backend.publish(data, channels)

    async def subscribe(self, channels: Iterable[str]) -> None:
        async with self._lock:
            first = []
            for channel in channels:
                self._counts[channel] = self._counts.get(channel, 0) + 1
                if self._counts[channel] == 1:
                    first.append(channel)
            if first:
                await self.backend.subscribe(first)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        async with self._lock:
            last = []
            for channel in channels:
                left = self._counts.get(channel, 0) - 1
                if left > 0:
                    self._counts[channel] = left
                    continue
                if self._counts.pop(channel, None) is not None:
                    last.append(channel)
            if last:
                await self.backend.unsubscribe(last)

    def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        return self.backend.stream_events()

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        return await self.backend.get_history(channel, limit)


def channels_backend(settings: Settings) -> ChannelsBackend:
    """The backend for this deployment (see the module docstring)."""
    choice = settings.channels_backend
    if choice == "auto":
        if settings.redis_url:
            choice = "redis"
        elif settings.is_sqlite:
            choice = "memory"
        else:
            choice = "postgres"
    if choice == "redis":
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        return RedisChannelsPubSubBackend(redis=Redis.from_url(settings.redis_url))
    if choice == "postgres":
        return PostgresChannelsBackend(asyncpg_dsn(settings.resolved_database_url))
    return MemoryChannelsBackend(history=0)


def create_channels(settings: Settings) -> ChannelsPlugin:
    return ChannelsPlugin(
        backend=CountedSubscriptions(channels_backend(settings)), arbitrary_channels_allowed=True
    )
