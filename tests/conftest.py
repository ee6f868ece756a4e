"""Test databases and servers: real SQLite and real PostgreSQL, a real HTTP server.

Every test that asks for ``server`` gets its own database, cloned from a template that was
migrated and loaded with the demo province once per run (PostgreSQL: ``CREATE DATABASE ...
TEMPLATE``; SQLite: a file copy), and its own uvicorn server on a free loopback port. Tests
parametrised over ``backend`` run on both; PostgreSQL tests are skipped when no server is
reachable, unless ``TELEHEALTH_TEST_REQUIRE_POSTGRES=1`` (CI sets it), which makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
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
    db = Database(Settings(database_url=url))
    try:
        async with db.unit_of_work() as session:
            await seed_demo(session)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
async def templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Template]]:
    made: dict[str, Template] = {}
    sqlite_file = tmp_path_factory.mktemp("template") / "template.db"
    await _seed(f"sqlite+aiosqlite:///{sqlite_file}")
    made["sqlite"] = Template("sqlite", str(sqlite_file))
    if await _pg_reachable():
        name = f"th_template_{secrets.token_hex(6)}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        await _seed(_pg_url(name))
        made["postgresql"] = Template("postgresql", name)
    yield made
    if "postgresql" in made:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{made["postgresql"].location}" WITH (FORCE)')


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
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """Direct access to the test database, for asserting what was (not) written."""
    database = Database(settings)
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
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
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
