"""Several real service processes on one PostgreSQL fire 1,000 timers; one is killed with
SIGKILL in the middle of a handler. Every timer fires and none has its effect twice: the
test counts rows written by the (deliberately non-idempotent) ``test.count`` handler."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, func, select

from telehealth.auth.models import AuditEvent
from telehealth.db import Database
from telehealth.settings import Settings
from telehealth.timer_test_kinds import TEST_EFFECT_ACTION
from telehealth.timers.models import Timer, TimerState
from telehealth.timers.service import schedule
from telehealth.timeutil import utcnow
from tests.conftest import free_port
from tests.e2e.conftest import ONE_AT_A_TIME

TIMERS = 1000
PROCESSES = 3

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only, ONE_AT_A_TIME]


def service_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """What each ``telehealth serve`` process is started with: the same database and key."""
    return {
        **os.environ,
        "TELEHEALTH_DATABASE_URL": settings.resolved_database_url,
        "TELEHEALTH_SECRET_KEY": settings.signing_key,
        "TELEHEALTH_DATA_DIR": str(settings.data_dir),
        "TELEHEALTH_TIMER_TEST_HANDLERS": "1",
        "TELEHEALTH_LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture
async def processes(settings: Settings) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    command = Path(sys.executable).parent / "telehealth"
    environment = service_environment(
        settings,
        TELEHEALTH_TIMER_POLL_S="0.2",
        TELEHEALTH_TIMER_LEASE_S="3",
        TELEHEALTH_TIMER_BATCH_SIZE="20",
    )
    ports = [free_port() for _ in range(PROCESSES)]
    started = [
        await asyncio.create_subprocess_exec(
            str(command),
            "serve",
            "--port",
            str(port),
            "--no-migrate",
            env=environment,
            stdout=asyncio.subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for port in ports:
                for _ in range(300):
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail(f"service on port {port} did not start")
        yield started
    finally:
        for process in started:
            if process.returncode is None:
                process.terminate()
        for process in started:
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def count_where(db: Database, *conditions: object) -> int:
    async with db.unit_of_work() as session:
        statement = select(func.count()).select_from(Timer).where(*conditions)  # type: ignore[arg-type]
        return int((await session.exec(statement)).one())


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_timers_fire_once_across_processes_despite_sigkill(
    processes: list[asyncio.subprocess.Process], db: Database
) -> None:
    start = utcnow() + timedelta(seconds=2)
    subjects = [uuid.uuid4() for _ in range(TIMERS)]
    async with db.unit_of_work() as session:
        for index, subject in enumerate(subjects):
            due = start + timedelta(milliseconds=3 * index)  # spread over 3 seconds
            # Each claimed batch sleeps 0.5 s in its handler: a kill lands mid-batch.
            schedule(session, "test.count", subject, due, {"sleep_s": 0.5})

    # Kill, in the middle of a batch, a process that holds leases on claimed timers.
    pids = {str(p.pid): p for p in processes}
    victim = None
    for _ in range(600):
        async with db.unit_of_work() as session:
            holders = (
                await session.exec(
                    select(Timer.claimed_by).where(col(Timer.state) == TimerState.RUNNING)
                )
            ).all()
        fired = await count_where(db, col(Timer.state) == TimerState.DONE)
        busy = {holder.split(":")[1] for holder in holders if holder}
        if fired >= TIMERS // 4 and busy & pids.keys():
            victim = pids[sorted(busy & pids.keys())[0]]
            victim.send_signal(signal.SIGKILL)
            break
        await asyncio.sleep(0.02)
    assert victim is not None, "no process was caught holding a lease"
    await asyncio.wait_for(victim.wait(), timeout=10)

    for _ in range(1200):
        if await count_where(db, col(Timer.state) != TimerState.DONE) == 0:
            break
        await asyncio.sleep(0.1)

    assert await count_where(db, col(Timer.state) != TimerState.DONE) == 0, "timers left unfired"
    async with db.unit_of_work() as session:
        effect_rows, distinct_subjects = (
            await session.exec(
                select(func.count(), func.count(func.distinct(AuditEvent.entity_id))).where(
                    col(AuditEvent.action) == TEST_EFFECT_ACTION
                )
            )
        ).one()
    assert distinct_subjects == TIMERS  # every timer had its effect
    assert effect_rows == TIMERS  # and none had it twice
    # The victim's leased timers were re-claimed by the survivors after its lease expired.
    assert await count_where(db, col(Timer.attempts) >= 2) > 0
    assert all(p.returncode is None for p in processes if p is not victim)
