"""A real `telehealth serve` process, as operators run it, for the multi-process tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import httpx

from telehealth.settings import Settings
from tests.conftest import free_port


@asynccontextmanager
async def serve(
    settings: Settings, tmp: Path, extra_env: dict[str, str], *, log: Path | None = None
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """One service process on ``settings``' database; yields its URL and the process. With
    ``log``, everything it writes (standard output and error) goes to that file."""
    env = {
        **os.environ,
        "TELEHEALTH_DATABASE_URL": settings.resolved_database_url,
        "TELEHEALTH_SECRET_KEY": settings.secret_key,
        "TELEHEALTH_DATA_DIR": str(tmp),
        "TELEHEALTH_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    # The child writes to the file itself: our copy can close once it is started.
    with contextlib.ExitStack() as files:
        output = None if log is None else files.enter_context(log.open("ab"))
        url, process = await _started(env, output)
    try:
        yield url, process
    finally:
        await _stopped(process)


async def _started(
    env: dict[str, str], output: IO[bytes] | None
) -> tuple[str, asyncio.subprocess.Process]:
    # The port is picked free, then bound by the process: another test may take it meanwhile,
    # and the process exits at once; then try another.
    for _ in range(3):
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            *[
                str(Path(sys.executable).parent / "telehealth"),
                "serve",
                "--port",
                str(port),
                "--no-migrate",
            ],
            env=env,
            stdout=output,
            stderr=None if output is None else asyncio.subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            if await _healthy(url, process):
                break
        except BaseException:
            await _stopped(process)
            raise
    else:
        raise RuntimeError(f"serve exited with {process.returncode} three times")
    return url, process


async def _healthy(url: str, process: asyncio.subprocess.Process) -> bool:
    """Whether the process answers /health (within 30 s), False if it exited first."""
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(300):
            if process.returncode is not None:
                return False
            try:
                if (await http.get("/health")).status_code == 200:
                    return True
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"serve did not answer {url}/health within 30 s")


async def _stopped(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    async with asyncio.timeout(20):
        await process.wait()


@asynccontextmanager
async def two_processes(
    settings: Settings, tmp: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two service processes on ``settings``' database (PostgreSQL), and a client of each."""
    async with (
        serve(settings, tmp / "a", {}) as (url_a, _),
        serve(settings, tmp / "b", {}) as (url_b, _),
        httpx.AsyncClient(base_url=url_a, timeout=30) as a,
        httpx.AsyncClient(base_url=url_b, timeout=30) as b,
    ):
        yield a, b
