"""What the service keeps on disk is readable by its own user only: ``telehealth serve`` on a
fresh data directory, as a newcomer runs it (SQLite, generated key, the demo province), under
the usual umask 022; then an attachment is stored, and every path is looked at."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.consult_support import new_request, own_patients
from tests.e2e.cli_support import TELEHEALTH, wait_for_health
from tests.helpers import login

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


@pytest.fixture
def fresh_service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "var" / "telehealth"  # neither exists yet
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEHEALTH_")}
    env |= {"TELEHEALTH_DATA_DIR": str(data), "TELEHEALTH_SCHEDULER_ENABLED": "false"}
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [TELEHEALTH, "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            umask=0o022,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, log)
        yield url, data
    finally:
        process.terminate()
        process.wait(timeout=30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_fresh_data_directory_and_everything_in_it_are_private(
    fresh_service: tuple[str, Path],
) -> None:
    url, data = fresh_service
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        doctor = await login(client, "bs.xa1")
        request = await new_request(client, doctor, (await own_patients(client, doctor))[0])
        stored = await client.post(
            f"/api/consults/{request['id']}/attachments",
            files={"data": ("ecg.png", PNG, "image/png")},
            headers=doctor,
        )
        assert stored.status_code == 201, stored.text
        # Every path is looked at while the service runs: the WAL and its index exist now.
        names = {p.name for p in data.iterdir()}
        assert {"telehealth.db", "telehealth.db-wal", "telehealth.db-shm", "secret.key"} <= names
        assert any(p.is_file() for p in (data / "attachments").rglob("*"))
        modes = {str(path.relative_to(data)): _mode(path) for path in [data, *data.rglob("*")]}
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (PRIVATE_DIR if (data / name).is_dir() else PRIVATE_FILE)
    }
    assert wrong == {}, "readable by others"
