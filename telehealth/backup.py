"""``telehealth backup DIR`` and ``telehealth restore DIR``: the database, by its own tools, and
every stored file of ``data_dir`` (attachments, recordings, the generated signing key).

A backup directory holds ``database.pgdump`` (pg_dump's custom format) or ``database.sqlite``
(SQLite's online backup API), ``files/`` (a copy of ``data_dir`` without the database) and
``manifest.json``: the schema revision, every table's row count in the copied database, and
every file's size and SHA-256. A restore goes into an empty database only, then checks the
counts and hashes against the manifest, so that a restore that "worked" but lost something
says so. The database is copied whole and consistent while the service runs: pg_dump reads a
snapshot exported by the transaction that counts the rows; SQLite's backup API copies a
consistent image, and the rows are counted in that image."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from telehealth import __version__
from telehealth.settings import Settings
from telehealth.storage import DIR_MODE, create_private_file, private_dir
from telehealth.timeutil import utcnow

MANIFEST = "manifest.json"
PG_DUMP = "database.pgdump"
SQLITE_COPY = "database.sqlite"
FILES = "files"
# Kept out of the copy of data_dir: the per-process metrics (meaningless in another run).
SKIPPED_DIRS = frozenset({"metrics"})
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do."""


@dataclass
class Manifest:
    service_version: str
    created_at: str
    database: str  # "postgresql" or "sqlite"
    schema_revision: str | None
    rows: dict[str, int]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> size, sha256
    secret_key_from_environment: bool = False


@dataclass(frozen=True)
class RestoreReport:
    tables: int
    rows: int
    files: int


# --- files -----------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stored_files(settings: Settings) -> Iterator[tuple[str, Path]]:
    """Every stored file of data_dir (relative name, path), without the SQLite database."""
    root = settings.data_dir.resolve()
    if not root.is_dir():
        return
    database = _sqlite_path(settings) if settings.is_sqlite else None
    own = {database, *(Path(f"{database}{s}") for s in ("-wal", "-shm", "-journal"))}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in SKIPPED_DIRS or not path.is_file() or path in own:
            continue
        yield relative.as_posix(), path


def _copy_private(source: Path, target: Path) -> None:
    private_dir(target.parent)
    descriptor = create_private_file(target)
    with os.fdopen(descriptor, "wb") as out, source.open("rb") as stream:
        shutil.copyfileobj(stream, out, _CHUNK)


def _copy_files(settings: Settings, files: Path) -> dict[str, dict[str, Any]]:
    listed: dict[str, dict[str, Any]] = {}
    for name, path in _stored_files(settings):
        target = files / name
        _copy_private(path, target)
        listed[name] = {"size": target.stat().st_size, "sha256": _sha256(target)}
    return listed


def _restore_files(manifest: Manifest, files: Path, data_dir: Path) -> None:
    for name, expected in manifest.files.items():
        source, target = files / name, data_dir / name
        if _sha256(source) != expected["sha256"]:
            raise BackupError(f"{source} does not match the manifest: the backup is damaged")
        if target.exists():
            if _sha256(target) != expected["sha256"]:
                raise BackupError(
                    f"{target} exists with other content; restore into an empty data directory"
                )
            continue
        _copy_private(source, target)


def _check_files(manifest: Manifest, data_dir: Path) -> None:
    for name, expected in manifest.files.items():
        path = data_dir / name
        if not path.is_file() or _sha256(path) != expected["sha256"]:
            raise BackupError(f"{path} was not restored as backed up")


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_url(settings: Settings) -> URL:
    return make_url(settings.resolved_database_url)


def _pg_env(url: URL) -> dict[str, str]:
    """libpq's connection settings for pg_dump/pg_restore: the password in the environment,
    not on a command line that every local user can read."""
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
        ("PGSSLMODE", url.query.get("sslmode") or url.query.get("ssl")),
    ):
        if value:
            env[variable] = str(value)
    return env


@asynccontextmanager
async def _pg_connection(url: URL) -> Any:
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        yield connection
    finally:
        await connection.close()


_PG_TABLES = (
    "SELECT quote_ident(table_name) FROM information_schema.tables "
    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
)


async def _pg_rows(connection: Any) -> dict[str, int]:
    tables = [row[0] for row in await connection.fetch(_PG_TABLES)]
    # The names come from the catalog, quoted by quote_ident.
    count = "SELECT count(*) FROM {}"
    return {t: int(await connection.fetchval(count.format(t))) for t in tables}


async def _pg_revision(connection: Any, rows: dict[str, int]) -> str | None:
    if "alembic_version" not in rows:
        return None
    revision = await connection.fetchval("SELECT version_num FROM alembic_version")
    return str(revision) if revision is not None else None


def _run(command: list[str], env: dict[str, str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (apt-get install postgresql-client)")
    done = subprocess.run(  # noqa: S603  (pg_dump/pg_restore with arguments made here)
        command, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")


async def _pg_backup(settings: Settings, target: Path) -> tuple[dict[str, int], str | None]:
    url = _pg_url(settings)
    async with (
        _pg_connection(url) as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        snapshot = await connection.fetchval("SELECT pg_export_snapshot()")
        rows = await _pg_rows(connection)
        revision = await _pg_revision(connection, rows)
        command = ["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-owner"]
        await asyncio.to_thread(_run, [*command, f"--file={target}"], _pg_env(url))
    return rows, revision


async def _pg_restore(settings: Settings, dump: Path) -> dict[str, int]:
    url = _pg_url(settings)
    async with _pg_connection(url) as connection:
        if await connection.fetch(_PG_TABLES):
            raise BackupError(
                f"database {url.database} already has tables: restore into an empty database"
            )
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"]
    await asyncio.to_thread(
        _run,
        [*command, "--single-transaction", f"--dbname={url.database}", str(dump)],
        _pg_env(url),
    )
    async with _pg_connection(url) as connection:
        return await _pg_rows(connection)


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.resolved_database_url).database
    if not database:
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database).resolve()


def _sqlite_rows(connection: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    count = 'SELECT count(*) FROM "{}"'  # names from the catalog, quoted
    return {
        name: int(connection.execute(count.format(name.replace('"', '""'))).fetchone()[0])
        for name in names
    }


def _sqlite_revision(connection: sqlite3.Connection, rows: dict[str, int]) -> str | None:
    if "alembic_version" not in rows:
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent image even while the service writes."""
    os.close(create_private_file(target))
    with sqlite3.connect(source) as reading, sqlite3.connect(target) as writing:
        reading.backup(writing)
    reading.close()
    writing.close()


def _sqlite_backup(settings: Settings, target: Path) -> tuple[dict[str, int], str | None]:
    source = _sqlite_path(settings)
    if not source.is_file():
        raise BackupError(f"{source} does not exist: nothing to back up")
    _sqlite_copy(source, target)
    with sqlite3.connect(target) as copied:
        rows = _sqlite_rows(copied)
        revision = _sqlite_revision(copied, rows)
    copied.close()
    return rows, revision


def _sqlite_restore(settings: Settings, copy: Path) -> dict[str, int]:
    target = _sqlite_path(settings)
    if target.exists() and target.stat().st_size > 0:
        with sqlite3.connect(target) as existing:
            tables = _sqlite_rows(existing)
        existing.close()
        if tables:
            raise BackupError(f"{target} already has tables: restore into an empty database")
        target.unlink()
    private_dir(target.parent)
    _sqlite_copy(copy, target)
    with sqlite3.connect(target) as restored:
        rows = _sqlite_rows(restored)
    restored.close()
    return rows


# --- the commands ----------------------------------------------------------------------------


def _new_backup_directory(settings: Settings, directory: Path) -> None:
    if directory.resolve().is_relative_to(settings.data_dir.resolve()):
        raise BackupError(f"{directory} is inside the data directory: back up somewhere else")
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: back up into a new directory")
    private_dir(directory)
    directory.chmod(DIR_MODE)


async def backup(settings: Settings, directory: Path) -> Manifest:
    await asyncio.to_thread(_new_backup_directory, settings, directory)
    if settings.is_sqlite:
        rows, revision = await asyncio.to_thread(_sqlite_backup, settings, directory / SQLITE_COPY)
    else:
        rows, revision = await _pg_backup(settings, directory / PG_DUMP)
    manifest = Manifest(
        service_version=__version__,
        created_at=utcnow().isoformat(),
        database="sqlite" if settings.is_sqlite else "postgresql",
        schema_revision=revision,
        rows=rows,
        files=await asyncio.to_thread(_copy_files, settings, directory / FILES),
        secret_key_from_environment=bool(settings.secret_key),
    )
    with os.fdopen(create_private_file(directory / MANIFEST), "w") as written:
        written.write(json.dumps(asdict(manifest), indent=2, sort_keys=True))
    return manifest


def read_manifest(directory: Path) -> Manifest:
    try:
        return Manifest(**json.loads((directory / MANIFEST).read_text()))
    except FileNotFoundError as exc:
        raise BackupError(f"{directory} holds no {MANIFEST}: not a telehealth backup") from exc
    except (ValueError, TypeError) as exc:
        raise BackupError(f"{directory / MANIFEST} is damaged: {exc}") from exc


async def restore(settings: Settings, directory: Path) -> RestoreReport:
    manifest = read_manifest(directory)
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest.database != kind:
        raise BackupError(
            f"this is a {manifest.database} backup; the service is set up for {kind} "
            "(TELEHEALTH_DATABASE_URL)"
        )
    data_dir = await asyncio.to_thread(settings.data_dir.resolve)
    # Files first: a damaged backup is found before the database is touched.
    await asyncio.to_thread(_restore_files, manifest, directory / FILES, data_dir)
    if settings.is_sqlite:
        rows = await asyncio.to_thread(_sqlite_restore, settings, directory / SQLITE_COPY)
    else:
        rows = await _pg_restore(settings, directory / PG_DUMP)
    if rows != manifest.rows:
        changed = sorted(
            t for t in manifest.rows.keys() | rows.keys() if rows.get(t) != manifest.rows.get(t)
        )
        raise BackupError(f"restored rows differ from the backup's in: {', '.join(changed)}")
    await asyncio.to_thread(_check_files, manifest, data_dir)
    return RestoreReport(tables=len(rows), rows=sum(rows.values()), files=len(manifest.files))
