"""The service as people run it: the ``telehealth`` command in its own process.

Test modules that need it bind the fixture: ``served = cli_support.served``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

TELEHEALTH = str(Path(sys.executable).parent / "telehealth")
SECRET = "e2e-signing-key-" + "s" * 32


def cli_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEHEALTH_")}
    env |= {
        "TELEHEALTH_DATABASE_URL": database_url,
        "TELEHEALTH_DATA_DIR": str(data_dir),
        "TELEHEALTH_SECRET_KEY": SECRET,
    }
    return env | extra


@dataclass
class Served:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve did not answer /health within 60 s:\n{log.read_text()}")


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """``telehealth serve`` on the test database, its output captured to a file."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [TELEHEALTH, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
            env=cli_env(database_url, tmp_path),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, log)
        yield Served(url, log, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
