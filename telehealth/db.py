"""Engine, sessions and the unit of work: the one place a transaction is opened.

Requests, jobs and the CLI all write through ``Database.unit_of_work()``; services receive
the session and never commit on their own. On SQLite every transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the database lock instead of failing
half-way, and foreign keys are switched on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, DateTime, Table, event, insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect
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
from telehealth.journal import Journal, Listeners, listening_info, take_journal
from telehealth.settings import Settings
from telehealth.storage import private_sqlite_file
from telehealth.timeutil import as_utc

log = logging.getLogger("telehealth.db")

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


def create_engine(settings: Settings, *, read_only: bool = False) -> AsyncEngine:
    """The engine of the service; with ``read_only`` (PostgreSQL), the one of ``read_only()``:
    autocommit, and asynchronous commit for the audit rows that are all it writes."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_async_engine(
            url,
            echo=settings.db_echo,
            json_serializer=_json_serializer,
            connect_args={"timeout": 60},
        )
        _make_sqlite_transactions_immediate(engine)
        return engine
    # Up to twice the pool size, opened as needed and then kept: with an "overflow" above the
    # pool size, SQLAlchemy closes each connection above it on return, and a busy process
    # (requests plus its timer and delivery jobs) opened and closed connections all the time,
    # each a new PostgreSQL backend and a stall of the request that waited for it.
    extra: dict[str, Any] = {"pool_size": 2 * settings.db_pool_size, "max_overflow": 0}
    if read_only:
        extra |= {
            "isolation_level": "AUTOCOMMIT",
            "connect_args": {"server_settings": {"synchronous_commit": "off"}},
        }
    return create_async_engine(
        url,
        echo=settings.db_echo,
        json_serializer=_json_serializer,
        # A ping before every checkout costs a round trip per transaction (about a third of a
        # FHIR read's rate). Without it a connection the server dropped fails one transaction,
        # and SQLAlchemy then replaces every connection older than the failure; connections
        # are also recycled before firewalls or PgBouncer would cut them.
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=settings.db_pool_recycle_s,
        **extra,
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


class Prepared:
    """A Core statement built once and run on ``Database.read_only()`` connections. On
    PostgreSQL it is compiled once and sent straight to asyncpg: SQLAlchemy's execution costs
    about as much CPU as the rest of a small read. Rows come back as tuples in column order."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._asyncpg: tuple[str, tuple[str, ...]] | None = None
        self._constants: dict[str, Any] = {}  # values written into the statement

    def _compiled(self) -> tuple[str, tuple[str, ...]]:
        if self._asyncpg is None:
            compiled = self.statement.compile(
                dialect=postgresql_asyncpg.dialect()  # type: ignore[no-untyped-call]
            )
            # Values the statement holds (not parameters): sent as they are, so a constant
            # must be of the type the driver takes (an enum's value, not the enum).
            self._constants = {
                name: compiled.binds[name].effective_value
                for name in compiled.positiontup or ()
                if compiled.binds[name].value is not None
            }
            self._asyncpg = (str(compiled), tuple(compiled.positiontup or ()))
        return self._asyncpg

    def _values(self, names: tuple[str, ...], params: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(params[name] if name in params else self._constants[name] for name in names)

    async def _driver(self, connection: AsyncConnection) -> Any:
        if connection.dialect.name != "postgresql":
            return None
        return (await connection.get_raw_connection()).driver_connection

    async def rows(self, connection: AsyncConnection, **params: Any) -> list[Any]:
        driver = await self._driver(connection)
        if driver is None:
            return list((await connection.execute(self.statement, params)).all())
        sql, names = self._compiled()
        return list(await driver.fetch(sql, *self._values(names, params)))

    async def execute_many(self, connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        driver = await self._driver(connection)
        if driver is None:
            await connection.execute(self.statement, rows)
            return
        sql, names = self._compiled()
        values = [self._values(names, row) for row in rows]
        if len(values) == 1:
            await driver.execute(sql, *values[0])  # one round trip, no pipeline set-up
        else:
            await driver.executemany(sql, values)


class Database:
    """The engine and session factory the application owns for its lifetime. ``listeners``
    (wired by the composition root, ``telehealth.reactions``) hear each unit of work's journal
    when it commits; without them a unit of work only writes what it writes."""

    def __init__(self, settings: Settings, listeners: Listeners | None = None) -> None:
        self.settings = settings
        self.listeners = listeners or Listeners()
        self.engine = create_engine(settings)
        # Every session of this database carries its listeners (not another database's of
        # the same process, as in tests and scripts): ``telehealth.journal`` runs them.
        self.sessions = async_sessionmaker(
            self.engine,
            class_=AsyncSession,
            expire_on_commit=False,
            info=listening_info(self.listeners),
        )
        for install in self.listeners.session_hooks:
            install()
        self.read_engine = (
            self.engine if self.dialect == "sqlite" else create_engine(settings, read_only=True)
        )
        # Readers queue here, first come first served, rather than in the pool's checkout
        # (which arms a timeout per waiter): cheaper, and fair to the slowest request.
        self._readers = asyncio.Semaphore(2 * settings.db_pool_size)

    async def _heard(self, journal: Journal) -> None:
        """The after-commit listeners, in order. The change is committed: a listener that
        fails is logged, and neither stops the others nor fails the use case."""
        for listener in self.listeners.after_commit:
            try:
                await listener(journal)
            except Exception:
                log.exception("an after-commit listener failed: %s", listener)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        committed: Journal | None = None
        try:
            async with self.sessions() as session:
                async with session.begin():
                    yield session
                committed = take_journal(session)
        except StatementError as exc:
            translated = _translated(exc)
            if translated is exc:
                raise
            raise translated from exc
        if committed is not None and self.listeners.after_commit:
            await self._heard(committed)

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a use case that changes nothing but writes audit rows (FHIR reads
        and searches). On PostgreSQL it is in autocommit, so a read costs its statements and no
        BEGIN/COMMIT round trips, with ``synchronous_commit=off`` (an audit row commits without
        waiting for the WAL flush; a database crash can lose the last fraction of a second
        of them, never a clinical change). On SQLite it is an ordinary transaction."""
        try:
            if self.read_engine is self.engine:
                async with self.engine.begin() as connection:
                    yield connection
            else:
                async with self._readers, self.read_engine.connect() as connection:
                    yield connection
        except StatementError as exc:
            translated = _translated(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def _translated(exc: StatementError) -> Exception:
    """A database error as the service's own (409, 422 or 503), or the error itself."""
    if isinstance(exc, IntegrityError):
        # The database enforces what concurrent requests could break; the loser gets 409.
        return Conflict("The change conflicts with data saved meanwhile; reload and retry")
    # The last line of defence for input the edge let through (PostgreSQL refuses NUL
    # characters in text, out-of-range numbers and over-long strings): a 4xx, not a 500.
    if _is_unstorable_value(exc):
        return InvalidInput(_UNSTORABLE)
    if _is_unavailable(exc):
        # A dropped pooled connection (restart, failover) has already been replaced by the
        # pool; a full server clears; either way a retry can work.
        return Unavailable(
            "The database is unreachable for a moment; nothing was saved, retry the request"
        )
    return exc


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT with the session's dialect's ``on_conflict_do_*`` (an upsert)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite_insert)(table)


def table_of(model: type[SQLModel]) -> Table:
    """A model's Core table: statements on it skip the ORM's per-row bookkeeping."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


async def core_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, for Core statements on hot paths (multi-row INSERTs,
    ``RETURNING``): no ORM objects to build or flush. Pending ORM changes are flushed first,
    so that the statements may refer to them. The FHIR write-through does not see what is
    written this way: the use case says it in the journal (``telehealth.journal``)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    unless_stored: tuple[str, ...] = (),
) -> None:
    """Write rows with one INSERT (one round trip, however many rows) in the session's
    transaction. No ORM defaults apply: every row names the same columns, the others are NULL.
    With ``unless_stored`` (the columns of a unique key), rows whose key is already stored are
    left out (``ON CONFLICT DO NOTHING``)."""
    if rows:
        connection = await core_connection(session)
        await connection.run_sync(write_rows, table, rows, unless_stored)


def write_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    unless_stored: tuple[str, ...] = (),
) -> None:
    """``insert_rows`` on a synchronous connection (the FHIR store writes inside the commit)."""
    if not rows:
        return
    unnested = _unnest_insert(connection.dialect, table, rows, unless_stored)
    if unnested is not None:
        connection.exec_driver_sql(*unnested)
    elif unless_stored:
        statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=unless_stored)
        connection.execute(statement, list(rows))
    else:
        connection.execute(insert(table), list(rows))


def _array_element_type(column: Any, dialect: Dialect) -> str:
    """The column's type without length or collation: an explicit cast to ``varchar(64)``
    would cut longer text silently, while the insert's own assignment to the column refuses
    it (22001, a 422 for the caller)."""
    declared = str(column.type.compile(dialect=dialect)).split(" COLLATE ")[0]
    return re.sub(r"\(\d+(,\s*\d+)?\)", "", declared)


@lru_cache(maxsize=64)
def _unnest_statement(
    dialect: Dialect, table: Table, names: tuple[str, ...], unless_stored: tuple[str, ...]
) -> tuple[str, tuple[Any, ...]]:
    columns = [table.c[name] for name in names]
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"${n}::{_array_element_type(column, dialect)}[]" for n, column in enumerate(columns, 1)
    )
    # Only the table's own (quoted) names and types go into the text; values are parameters.
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "  # noqa: S608
        f"({', '.join(quote(name) for name in names)}) SELECT * FROM unnest({arrays})"
    )
    if unless_stored:
        sql += f" ON CONFLICT ({', '.join(quote(name) for name in unless_stored)}) DO NOTHING"
    return sql, tuple(column.type.bind_processor(dialect) for column in columns)


def _unnest_insert(
    dialect: Dialect,
    table: Table,
    rows: Sequence[dict[str, Any]],
    unless_stored: tuple[str, ...] = (),
) -> tuple[str, tuple[list[Any], ...]] | None:
    """On PostgreSQL, many rows as one ``INSERT ... SELECT * FROM unnest($1::type[], ...)``:
    one array per column, bound once, where an executemany binds and executes every row (for
    the thirty-odd rows of a booking, a fifth of its database CPU in the service). Values go
    through the columns' own bind processors, as SQLAlchemy would send them. ``None`` on SQLite
    (its executemany runs in-process)."""
    if dialect.name != "postgresql":
        return None
    names = tuple(rows[0])
    sql, processors = _unnest_statement(dialect, table, names, unless_stored)
    arrays = tuple(
        [row[name] for row in rows] if process is None else [process(row[name]) for row in rows]
        for name, process in zip(names, processors, strict=True)
    )
    return sql, arrays
