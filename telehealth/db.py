"""Engine, sessions and the unit of work: the one place a transaction is opened.

Requests, jobs and the CLI all write through ``Database.unit_of_work()``; services receive
the session and never commit on their own. On SQLite every transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the database lock instead of failing
half-way, and foreign keys are switched on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Table, event, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.errors import Conflict, InvalidInput, Unavailable
from telehealth.settings import Settings
from telehealth.timeutil import as_utc

PortableJSON = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = as_utc(value)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def _json_serializer(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=settings.db_echo,
            json_serializer=_json_serializer,
            connect_args={"timeout": 60},
        )
        _make_sqlite_transactions_immediate(engine)
        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        json_serializer=_json_serializer,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # A ping before every checkout costs a round trip per transaction (about a third of a
        # FHIR read's rate). Without it a connection the server dropped fails one transaction,
        # and SQLAlchemy then replaces every connection older than the failure; connections
        # are also recycled before firewalls or PgBouncer would cut them.
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=settings.db_pool_recycle_s,
    )


def _make_sqlite_transactions_immediate(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_UNSTORABLE = (
    "A value is out of range, too long, or holds characters that cannot be stored "
    "(such as NUL); correct it and retry"
)


def _is_unstorable_value(exc: StatementError) -> bool:
    if isinstance(exc, DataError) or isinstance(exc.orig, OverflowError):
        return True
    # SQLSTATE class 22 is "data exception"; asyncpg's are not mapped onto DataError.
    return str(getattr(exc.orig, "sqlstate", "") or "").startswith("22")


def _is_unavailable(exc: StatementError) -> bool:
    """The database is out of reach for now (connection dropped or refused, too many clients,
    shutting down); the same request can succeed when retried."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # SQLSTATE classes 08 (connection exception), 53 (insufficient resources, e.g. too many
    # clients) and 57P (operator intervention: shutdown, cannot connect now).
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    return sqlstate.startswith(("08", "53", "57P"))


class Database:
    """The engine and session factory the application owns for its lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # Every unit of work writes the FHIR versions of the rows it changes (telehealth.fhir).
        from telehealth.fhir.writethrough import install_write_through

        install_write_through()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except IntegrityError as exc:
            # The database enforces what concurrent requests could break; the loser gets 409.
            raise Conflict(
                "The change conflicts with data saved meanwhile; reload and retry"
            ) from exc
        except StatementError as exc:
            # The last line of defence for input the edge let through (PostgreSQL refuses NUL
            # characters in text, out-of-range numbers and over-long strings): a 4xx, not a 500.
            if _is_unstorable_value(exc):
                raise InvalidInput(_UNSTORABLE) from exc
            if _is_unavailable(exc):
                # A dropped pooled connection (restart, failover) has already been replaced
                # by the pool; a full server clears; either way a retry can work.
                raise Unavailable(
                    "The database is unreachable for a moment; nothing was saved, retry the request"
                ) from exc
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()


def table_of(model: type[SQLModel]) -> Table:
    """A model's Core table: statements on it skip the ORM's per-row bookkeeping."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


async def core_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, for Core statements on hot paths (multi-row INSERTs,
    ``RETURNING``): no ORM objects to build or flush. Pending ORM changes are flushed first,
    so that the statements may refer to them. The FHIR write-through does not see what is
    written this way (``telehealth.fhir.writethrough.record_written`` tells it)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows with one Core INSERT (one round trip, however many rows) in the session's
    transaction. No ORM defaults apply: every row names the same columns, the others are NULL."""
    if rows:
        await (await core_connection(session)).execute(insert(table), list(rows))
