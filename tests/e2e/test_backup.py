"""`telehealth backup` and `telehealth restore`, run as operators run them: a restore into an
empty database finds every row of every table and every stored file with its hash."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine

from telehealth.settings import Settings
from tests.conftest import _pg_admin, _pg_url
from tests.consult_support import new_request, own_patients
from tests.e2e.cli_support import TELEHEALTH, cli_env
from tests.helpers import login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + secrets.token_bytes(256)


def telehealth(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TELEHEALTH, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def everything(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            metadata = MetaData()
            await connection.run_sync(metadata.reflect)
            found = {}
            for table in metadata.sorted_tables:
                rows = (await connection.execute(select(table))).all()
                found[table.name] = sorted((tuple(r) for r in rows), key=repr)
            return found
    finally:
        await engine.dispose()


def hashes(data_dir: Path) -> dict[str, str]:
    return {
        path.relative_to(data_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in data_dir.rglob("*")
        if path.is_file() and not path.name.startswith("telehealth.db")
    }


async def empty_database(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'telehealth.db'}"
    name = f"th_restore_{secrets.token_hex(6)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    return _pg_url(name)


async def test_backup_restores_every_row_and_file(
    client: httpx.AsyncClient,
    settings: Settings,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    doctor = await login(client, "bs.xa1")
    request = await new_request(client, doctor, (await own_patients(client, doctor))[0])
    uploaded = await client.post(
        f"/api/consults/{request['id']}/attachments",
        files={"data": ("ecg.png", PNG, "image/png")},
        headers=doctor,
    )
    assert uploaded.status_code == 201, uploaded.text
    # A deployment that lets the service generate its signing key keeps it in data_dir.
    assert Settings(data_dir=settings.data_dir, secret_key="").signing_key
    source_files = hashes(settings.data_dir)
    assert "secret.key" in source_files
    assert any(name.startswith("attachments/") for name in source_files)

    out = tmp_path_factory.mktemp("backup") / "2026-12-02"
    made = telehealth(
        ["backup", str(out)], cli_env(settings.resolved_database_url, settings.data_dir)
    )
    assert made.returncode == 0, made.stderr
    assert "backed up" in made.stdout
    assert (out / "manifest.json").stat().st_mode & 0o077 == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"]["audit_event"] > 0 and manifest["schema_revision"]

    target_dir = tmp_path_factory.mktemp("restored")
    target_url = await empty_database(backend, target_dir)
    target = cli_env(target_url, target_dir)
    restored = telehealth(["restore", str(out)], target)
    assert restored.returncode == 0, restored.stderr
    assert "all match the backup" in restored.stdout

    assert await everything(target_url) == await everything(settings.resolved_database_url)
    assert hashes(target_dir) == source_files

    again = telehealth(["restore", str(out)], target)
    assert again.returncode != 0
    assert "restore into an empty" in again.stderr


async def test_a_damaged_backup_is_refused_before_the_database_is_touched(
    client: httpx.AsyncClient,
    settings: Settings,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    assert Settings(data_dir=settings.data_dir, secret_key="").signing_key
    out = tmp_path_factory.mktemp("backup") / "damaged"
    env = cli_env(settings.resolved_database_url, settings.data_dir)
    assert telehealth(["backup", str(out)], env).returncode == 0
    (out / "files" / "secret.key").write_text("changed by hand")
    target_dir = tmp_path_factory.mktemp("restored")
    target_url = await empty_database(backend, target_dir)
    refused = telehealth(["restore", str(out)], cli_env(target_url, target_dir))
    assert refused.returncode != 0
    assert "secret.key does not match the manifest" in refused.stderr
    assert await everything(target_url) == {}

    inside = telehealth(["backup", str(settings.data_dir / "b")], env)
    assert inside.returncode != 0 and "inside the data directory" in inside.stderr
    assert telehealth(["backup", str(out)], env).returncode != 0  # not empty: never overwritten
