"""Test databases and servers: real SQLite and real PostgreSQL, a real HTTP server.

The demo province is migrated and loaded once per run into a template (PostgreSQL: a database;
SQLite: a file), which the pytest-xdist workers of the run share (see ``templates``). Each
worker then keeps, per backend, a *house* (see ``House``): a copy of the template and a
uvicorn server on a loopback port, both kept for the whole run. Before every test that asks
for a database the house's tables are put back to the template's rows, and its data
directory emptied, so each test starts from the demo province as if its database were new,
without a database made and a server started for it. A test that needs other settings
(overriding the ``settings`` fixture) gets its own server on the house's database.

Tests parametrised over ``backend`` run on both; PostgreSQL tests are skipped when no server is
reachable, unless ``TELEHEALTH_TEST_REQUIRE_POSTGRES=1`` (CI sets it), which makes that a failure.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import secrets
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from litestar import Litestar

from telehealth.app import create_app
from telehealth.db import Database
from telehealth.demo import seed_demo
from telehealth.reactions import open_database, upgrade_database
from telehealth.settings import Settings

PG_ADMIN_DSN = os.environ.get(
    "TELEHEALTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("TELEHEALTH_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]


def _pg_url(database: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


async def _pg_admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _pg_reachable() -> bool:
    try:
        await _pg_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


@dataclass
class Template:
    backend: str
    location: str  # a database name (PostgreSQL) or a file path (SQLite)

    async def clone(self, tmp: Path) -> str:
        if self.backend == "sqlite":
            target = tmp / "telehealth.db"
            shutil.copyfile(self.location, target)
            return f"sqlite+aiosqlite:///{target}"
        name = f"th_test_{secrets.token_hex(6)}"
        await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.location}"')
        return _pg_url(name)


async def _seed(url: str) -> None:
    await asyncio.to_thread(upgrade_database, url)
    db = open_database(Settings(database_url=url))
    try:
        async with db.unit_of_work() as session:
            await seed_demo(session)
    finally:
        await db.dispose()


async def _make_templates(directory: Path) -> dict[str, Template]:
    made: dict[str, Template] = {}
    sqlite_file = directory / "template.db"
    await _seed(f"sqlite+aiosqlite:///{sqlite_file}")
    made["sqlite"] = Template("sqlite", str(sqlite_file))
    if await _pg_reachable():
        name = f"th_template_{secrets.token_hex(6)}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        await _seed(_pg_url(name))
        made["postgresql"] = Template("postgresql", name)
    return made


@asynccontextmanager
async def _async_locked(path: Path) -> AsyncIterator[None]:
    """Exclusive among the processes that lock the same file (the xdist workers of a run)."""
    with path.open("a") as held:
        await asyncio.to_thread(fcntl.flock, held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
async def templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Template]]:
    """Made by the first worker of the run that needs them, used by all, dropped by the last.

    Without xdist the run's own temporary directory holds them; with it, the directory the
    workers' directories share (never the one other runs share). A count of users, changed
    under a file lock, says when the PostgreSQL template may go.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    lock, state = shared / "templates.lock", shared / "templates.json"
    async with _async_locked(lock):
        if state.exists():
            recorded = json.loads(state.read_text())
        else:
            directory = Path(tempfile.mkdtemp(prefix="template-", dir=shared))
            made = await _make_templates(directory)
            recorded = {"users": 0, "made": {key: t.location for key, t in made.items()}}
        recorded["users"] += 1
        state.write_text(json.dumps(recorded))
    yield {key: Template(key, location) for key, location in recorded["made"].items()}
    async with _async_locked(lock):
        recorded = json.loads(state.read_text())
        recorded["users"] -= 1
        if recorded["users"] > 0:
            state.write_text(json.dumps(recorded))
            return
        state.unlink()
        if "postgresql" in recorded["made"]:
            name = recorded["made"]["postgresql"]
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _test_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-signing-key-" + "x" * 32,
        scheduler_enabled=False,
        gc_freeze=False,  # it costs a full collection at every in-process server start
    )


@dataclass
class House:
    """A worker's database for one backend, copied once from the template, and the server
    that runs on it for the worker's whole run (started when a test first asks for it).

    ``reset`` puts every table back to the template's rows in one transaction (foreign keys
    and triggers off meanwhile) and empties the data directory but for the database file;
    the running server's in-memory FHIR read cache is cleared with it, since the rows it
    holds may have been changed by a test."""

    template: Template
    url: str
    settings: Settings
    tables: list[str]
    rows: dict[str, tuple[list[str], list[tuple[object, ...]]]]  # PostgreSQL: the seed's rows
    server: RunningServer | None = None
    stop_server: Callable[[], Awaitable[None]] | None = None

    @classmethod
    async def open(cls, template: Template, directory: Path) -> House:
        url = await template.clone(directory)
        settings = _test_settings(url, directory)
        if template.backend == "sqlite":
            with closing(sqlite3.connect(Path(template.location))) as seed:
                tables = [name for (name,) in seed.execute(_SQLITE_TABLES)]
            return cls(template, url, settings, tables, {})
        connection = await asyncpg.connect(_plain_dsn(url))
        try:
            tables = [r["tablename"] for r in await connection.fetch(_PG_TABLES)]
            rows: dict[str, tuple[list[str], list[tuple[object, ...]]]] = {}
            for table in tables:
                # Table names read from the catalogue above, not from input.
                found = await connection.fetch(f'SELECT * FROM "{table}"')  # noqa: S608
                if found:
                    rows[table] = (list(found[0].keys()), [tuple(r.values()) for r in found])
        finally:
            await connection.close()
        return cls(template, url, settings, tables, rows)

    async def reset(self) -> None:
        if self.template.backend == "sqlite":
            await asyncio.to_thread(self._reset_sqlite)
        else:
            await self._reset_postgresql()
        for entry in self.settings.data_dir.iterdir():
            if entry.name.startswith("telehealth.db"):
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        if self.server is not None and self.server.app is not None:
            state = self.server.app.state
            if state.fhir_cache is not None:
                state.fhir_cache.clear()
            # A test of many concurrent requests leaves the pool full; idle, its connections
            # would count against PostgreSQL's limit beside every other worker's.
            pools = {state.db.engine.pool, state.db.read_engine.pool}
            if sum(pool.checkedin() for pool in pools) > _IDLE_CONNECTIONS_KEPT:
                await state.db.dispose()

    def _reset_sqlite(self) -> None:
        path = self.url.split(":///", 1)[1]
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            connection.execute("PRAGMA foreign_keys = OFF")
            connection.execute("ATTACH DATABASE ? AS seed", (self.template.location,))
            connection.execute("BEGIN IMMEDIATE")
            for table in self.tables:  # names read from the template's catalogue
                connection.execute(f'DELETE FROM main."{table}"')  # noqa: S608
                connection.execute(f'INSERT INTO main."{table}" SELECT * FROM seed."{table}"')  # noqa: S608
            connection.execute("COMMIT")
        finally:
            connection.close()

    async def _reset_postgresql(self) -> None:
        connection = await asyncpg.connect(_plain_dsn(self.url))
        try:
            # Table names read from the catalogue; replication role "replica" turns off the
            # foreign keys' and the overlap checks' triggers for this transaction.
            deletes = "".join(f'DELETE FROM "{table}";' for table in self.tables)  # noqa: S608
            async with connection.transaction():
                await connection.execute("SET LOCAL session_replication_role = replica;" + deletes)
                for table, (columns, records) in self.rows.items():
                    await connection.copy_records_to_table(table, records=records, columns=columns)
        finally:
            await connection.close()

    async def close(self) -> None:
        if self.stop_server is not None:
            await self.stop_server()
        if self.template.backend == "postgresql":
            await _pg_admin(f'DROP DATABASE IF EXISTS "{self.url.rsplit("/", 1)[1]}" WITH (FORCE)')


_IDLE_CONNECTIONS_KEPT = 4
_SQLITE_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' "
    "AND name NOT LIKE 'sqlite_%' AND name <> 'alembic_version' ORDER BY name"
)
_PG_TABLES = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
    "AND tablename <> 'alembic_version' ORDER BY tablename"
)


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
async def houses(
    templates: dict[str, Template], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, House]]:
    """This worker's houses by backend, opened when a test first needs one."""
    opened: dict[str, House] = {}
    yield opened
    for house in opened.values():
        await house.close()


@pytest.fixture
async def house(
    backend: str,
    templates: dict[str, Template],
    houses: dict[str, House],
    tmp_path_factory: pytest.TempPathFactory,
) -> House:
    """The worker's house for the test's backend, its rows and files put back."""
    if backend not in templates:
        if REQUIRE_PG:
            pytest.fail(
                "PostgreSQL is required (TELEHEALTH_TEST_REQUIRE_POSTGRES=1) but not reachable"
            )
        pytest.skip("PostgreSQL not reachable")
    if backend not in houses:
        houses[backend] = await House.open(
            templates[backend], tmp_path_factory.mktemp(f"house-{backend}")
        )
    await houses[backend].reset()
    return houses[backend]


@pytest.fixture
def database_url(house: House) -> str:
    """A database holding the demo province, as if new (see ``House``)."""
    return house.url


@pytest.fixture
async def private_database_url(
    backend: str, templates: dict[str, Template], house: House, tmp_path: Path
) -> AsyncIterator[str]:
    """A database of the test's own, copied from the template and dropped after it: for a
    test that counts the connections to its database (the house's server has some), or
    a module that overrides ``database_url`` with it."""
    url = await templates[backend].clone(tmp_path)
    yield url
    if backend == "postgresql":
        await _pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture
def settings(house: House, database_url: str, tmp_path: Path) -> Settings:
    """The house's settings, or on another database (a module's own ``database_url``) the
    same settings there, with the test's temporary directory for data."""
    if database_url == house.url:
        return house.settings
    return _test_settings(database_url, tmp_path)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """Direct access to the test database, for asserting what was (not) written."""
    database = open_database(settings)
    yield database
    await database.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    settings: Settings
    app: Litestar | None = None  # the running application, e.g. to publish on its channels


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[RunningServer]:
    """The real service, served by uvicorn on a loopback port, for the block's duration."""
    # Bound here, port 0: a port picked free and bound later by uvicorn can be taken by another
    # worker meanwhile (seen once: uvicorn exited, and the worker's later tests all errored).
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    port = int(listening.getsockname()[1])
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # A connection a browser keeps open must not hold the test's teardown forever (seen
        # once in a parallel run: chromium's socket stayed, and uvicorn waited on it).
        timeout_graceful_shutdown=10,
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve(sockets=[listening]))
    while not instance.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings, app)
    finally:
        instance.should_exit = True
        await task


@pytest.fixture
async def server(settings: Settings, house: House) -> AsyncIterator[RunningServer]:
    """The real service on the test's database: the house's server, kept running between
    tests, unless the test changed the settings, which then get a server of their own."""
    if settings is not house.settings:
        async with serving(settings) as own:
            yield own
        return
    if house.server is None:
        running = serving(settings)
        house.server = await running.__aenter__()
        house.stop_server = lambda: running.__aexit__(None, None, None)
    yield house.server


class ServiceClient(httpx.AsyncClient):
    """An HTTP client of a server this process runs, which ``tests.helpers.login`` may mint
    tokens for directly (the server's signing key and database are at hand)."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(base_url=server.url, timeout=30)
        self.server = server


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with ServiceClient(server) as http:
        yield http


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def repo_root() -> Iterator[Path]:
    return Path(__file__).resolve().parent.parent
