"""What the core and the domain know of cross-process channels, without the web framework.

Channel names: ``room.<uuid>`` (signalling of one room), ``user.<uuid>`` (live updates for one
person's open pages). ``Broadcast`` is the part of litestar's ``ChannelsPlugin`` that the
rooms use (publish, subscribe); the plugin and its backends are built at the edge
(``telehealth/http/channels.py``) and handed in by ``create_app``. ``Listener`` is the
PostgreSQL LISTEN connection that comes back after a loss, shared by the Channels backend and
the notices (``telehealth/notices.py``); ``ChannelSpill`` keeps the payloads too large for
NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlmodel import Field, SQLModel

from telehealth.db import UTCDateTime
from telehealth.timeutil import utcnow

log = logging.getLogger("telehealth.events")


class Subscription(Protocol):
    """One subscriber's messages (litestar's ``Subscriber``)."""

    def iter_events(self) -> AsyncGenerator[bytes, None]: ...


class Broadcast(Protocol):
    """Publish to and subscribe on named channels across processes (litestar's
    ``ChannelsPlugin`` is one)."""

    async def wait_published(self, data: bytes, channels: str | Iterable[str]) -> None: ...

    async def subscribe(self, channels: str | Iterable[str]) -> Subscription: ...

    def start_subscription(
        self, channels: str | Iterable[str]
    ) -> AbstractAsyncContextManager[Subscription]: ...


class ChannelSpill(SQLModel, table=True):
    """A payload too large for NOTIFY, kept briefly for the listeners to fetch by id."""

    __tablename__ = "channel_spill"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=63)
    payload: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


Notify = Callable[[str, str], None]  # (channel, payload)


class Listener:
    """A LISTEN connection that comes back: a watchdog checks it every ``reconnect_delay_s``
    and, once it is gone, connects again and LISTENs every channel of the set. Notifications
    sent while it was away are lost; ``on_connect`` runs after every (re)connection and
    ``on_lost`` as soon as a loss is seen, so that a user can make up for them."""

    def __init__(
        self,
        dsn: str,
        on_notify: Notify,
        *,
        name: str,
        reconnect_delay_s: float = 1.0,
        on_connect: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._on_notify = on_notify
        self._name = name
        self._reconnect_delay_s = reconnect_delay_s
        self._on_connect = on_connect
        self._on_lost = on_lost
        self._connection: asyncpg.Connection | None = None
        self.channels: set[str] = set()
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._lock = asyncio.Lock()
        self._closing = False
        await self._connect()
        self._watchdog = asyncio.create_task(self._keep_listening())

    async def stop(self) -> None:
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    def _deliver(self, _connection: Any, _pid: int, channel: str, payload: object) -> None:
        self._on_notify(channel, str(payload))

    def _lost(self, _connection: Any) -> None:
        if self._on_lost is not None and not self._closing:
            self._on_lost()

    async def _connect(self) -> None:
        async with self._lock:
            connection = await asyncpg.connect(
                self._dsn, server_settings={"application_name": self._name}
            )
            connection.add_termination_listener(self._lost)
            for channel in self.channels:
                await connection.add_listener(channel, self._deliver)
            self._connection = connection
        if self._on_connect is not None:
            self._on_connect()

    async def _alive(self) -> bool:
        """A round trip on the connection, under the lock: a connection runs one statement at
        a time, and a check that overlapped a LISTEN used to fail one of the two."""
        async with self._lock:
            connection = self._connection
            if connection is None or connection.is_closed():
                return False
            try:
                await asyncio.wait_for(connection.execute("SELECT 1"), timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError):
                return False
            return True

    async def _keep_listening(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._reconnect_delay_s)
            if await self._alive():
                continue
            log.warning("%s: connection lost; reconnecting", self._name)
            if self._on_lost is not None:
                self._on_lost()
            if self._connection is not None:
                self._connection.terminate()
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await self._connect()
                log.info("%s: reconnected to %d channels", self._name, len(self.channels))

    async def listen(self, channels: Iterable[str]) -> None:
        async with self._lock:
            for channel in set(channels) - self.channels:
                self.channels.add(channel)
                if self._connection is not None and not self._connection.is_closed():
                    try:
                        await self._connection.add_listener(channel, self._deliver)
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        # The watchdog reconnects and LISTENs every channel of the set.
                        log.warning("%s: LISTEN %s failed; reconnecting", self._name, channel)
                        self._connection.terminate()

    async def unlisten(self, channels: Iterable[str]) -> None:
        async with self._lock:
            for channel in set(channels) & self.channels:
                self.channels.discard(channel)
                if self._connection is not None and not self._connection.is_closed():
                    with contextlib.suppress(
                        OSError, asyncpg.PostgresError, asyncpg.InterfaceError
                    ):
                        await self._connection.remove_listener(channel, self._deliver)


def room_channel(room_id: uuid.UUID) -> str:
    """Signalling of one video room."""
    return f"room.{room_id}"


def user_channel(user_id: uuid.UUID) -> str:
    """Live updates for the open pages of one person."""
    return f"user.{user_id}"


async def publish_to_user(
    channels: Broadcast, user_id: uuid.UUID, kind: str, subject_id: uuid.UUID
) -> None:
    """Tell a person's open pages that something changed (they reload it from the API)."""
    payload = {"kind": kind, "subject_id": str(subject_id)}
    await channels.wait_published(json.dumps(payload).encode(), [user_channel(user_id)])
