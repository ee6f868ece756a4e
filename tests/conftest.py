"""Test databases and servers: real SQLite and real PostgreSQL, a real HTTP server.

Every test that asks for ``server`` gets its own database, cloned from a template that was
migrated and loaded with the demo province once per run (PostgreSQL: ``CREATE DATABASE ...
TEMPLATE``; SQLite: a file copy), and its own uvicorn server on a free loopback port. Under
pytest-xdist the workers of one run share the templates (see ``templates``). Tests
parametrised over ``backend`` run on both; PostgreSQL tests are skipped when no server is
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
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
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
from telehealth.migrate import upgrade
from telehealth.reactions import open_database
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
    await asyncio.to_thread(upgrade, url)
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


@pytest.fixture
async def database_url(
    backend: str, templates: dict[str, Template], tmp_path: Path
) -> AsyncIterator[str]:
    """A fresh database holding the demo province, dropped after the test."""
    if backend not in templates:
        if REQUIRE_PG:
            pytest.fail(
                "PostgreSQL is required (TELEHEALTH_TEST_REQUIRE_POSTGRES=1) but not reachable"
            )
        pytest.skip("PostgreSQL not reachable")
    url = await templates[backend].clone(tmp_path)
    yield url
    if backend == "postgresql":
        await _pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key="test-signing-key-" + "x" * 32,
        scheduler_enabled=False,
        gc_freeze=False,  # it costs a full collection at every in-process server start
    )


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


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    """The real service, served by uvicorn on a loopback port."""
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
    yield RunningServer(f"http://127.0.0.1:{port}", settings, app)
    instance.should_exit = True
    await task


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def repo_root() -> Iterator[Path]:
    return Path(__file__).resolve().parent.parent
