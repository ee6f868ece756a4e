"""Notices of a change, sent in the transaction that makes it, heard by every process once it
commits: what keeps a process's in-memory view of some rows (the FHIR directory cache, the
revoked sessions) as current as the database.

- ``announce(session, channel, payload)`` runs ``pg_notify`` in the session's transaction on
  PostgreSQL (delivered to every listening process at commit, never on rollback) and, after a
  commit, hands the payload to this process's hearers itself: the writer's next request may
  come before PostgreSQL's notification does, and SQLite has no notifications at all.
- A ``Hearer`` listens on one channel of one database. On PostgreSQL it holds a LISTEN
  connection (``pubsub.Listener``) that comes back after a loss; notices sent while it was
  away are lost, so hearers are told when it is lost (``deaf``) and back (``heard``), to stop
  trusting their view and catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from telehealth.pubsub import Listener, asyncpg_dsn

_ANNOUNCED = "notices_announced"  # in a session's info: [(database, channel, payload)]
_NOTIFY = sa.select(
    sa.func.pg_notify(
        sa.bindparam("channel", type_=sa.Text), sa.bindparam("payload", type_=sa.Text)
    )
)


class Hearer(Protocol):
    def hear(self, payload: str) -> None: ...
    def heard(self) -> None: ...  # listening (again): what was sent meanwhile is lost
    def deaf(self) -> None: ...


# This process's hearers, by database and channel.
_HEARERS: dict[tuple[str, str], weakref.WeakSet[Hearer]] = {}


def _database_key(url: str | sa.URL) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def announce(session: Session, channel: str, payload: str) -> None:
    """Tell every process, once this transaction commits (payloads under 8,000 bytes)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_NOTIFY, {"channel": channel, "payload": payload})
    database = _database_key(connection.engine.url)
    session.info.setdefault(_ANNOUNCED, []).append((database, channel, payload))


def _deliver_committed(session: Session) -> None:
    for database, channel, payload in session.info.pop(_ANNOUNCED, []):
        for hearer in list(_HEARERS.get((database, channel), ())):
            hearer.hear(payload)


def _drop_announced(session: Session) -> None:
    session.info.pop(_ANNOUNCED, None)


def install() -> None:
    """Hook every ORM session (idempotent)."""
    if not event.contains(Session, "after_commit", _deliver_committed):
        event.listen(Session, "after_commit", _deliver_committed)
        event.listen(Session, "after_rollback", _drop_announced)


class Subscription:
    """``hearer`` hears ``channel`` of ``database_url``: from this process's commits at once,
    and (``start``) from every process's on PostgreSQL."""

    def __init__(self, database_url: str, channel: str, hearer: Hearer, *, name: str) -> None:
        install()
        self._hearer = hearer
        self._channel = channel
        self._listener: Listener | None = None
        _HEARERS.setdefault((_database_key(database_url), channel), weakref.WeakSet()).add(hearer)
        if database_url.startswith("postgresql"):
            self._listener = Listener(
                asyncpg_dsn(database_url),
                lambda _channel, payload: hearer.hear(payload),
                name=name,
                on_connect=hearer.heard,
                on_lost=hearer.deaf,
            )

    async def start(self) -> None:
        if self._listener is not None:
            await self._listener.listen([self._channel])
            await self._listener.start()
        else:
            self._hearer.heard()

    async def stop(self) -> None:
        self._hearer.deaf()
        if self._listener is not None:
            await self._listener.stop()


class CatchingUp:
    """A hearer that reads from the database what its notices would have said: once when it
    starts (after it listens, so nothing falls between) and each time its listener comes
    back, since notices sent while it was away are lost. Subclasses say how (``catch_up``)."""

    def __init__(self, database_url: str, channel: str, *, name: str) -> None:
        self._catching_up: set[asyncio.Task[None]] = set()
        self._started = False
        self._notices = Subscription(database_url, channel, self, name=name)

    def hear(self, payload: str) -> None:
        raise NotImplementedError

    async def catch_up(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        await self._notices.start()  # listening first: what is announced from now on is heard
        await self.catch_up()  # and what was announced before is read
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self._notices.stop()
        for task in list(self._catching_up):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the listener (``hear`` cannot wait); ``stop`` cancels it."""
        task = asyncio.get_running_loop().create_task(work)
        self._catching_up.add(task)
        task.add_done_callback(self._catching_up.discard)

    def heard(self) -> None:
        if self._started:  # not at the first connection: ``start`` reads next
            self.later(self.catch_up())

    def deaf(self) -> None:
        pass  # what was heard stays; ``heard`` reads what is missed meanwhile
