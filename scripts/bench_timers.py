"""Benchmark of the timer claim loop (run through scripts/bench_timers).

1. A fresh PostgreSQL database is migrated; N ``telehealth serve`` processes start with the
   test-only handler ``test.count`` (one audit row per firing, deliberately non-idempotent).
2. T timers are written due at one instant a few seconds ahead; we wait until all are done.
   Lag = fired_at - due_at per timer; duplicates = effect rows beyond one per timer; missed =
   timers not done when the time bound runs out.
3. Ceiling: with the services still up (idle: they do not handle that kind), the same work (claim a batch with FOR UPDATE SKIP LOCKED
   and a lease, then effect rows + "done" in one transaction) runs on bare asyncpg with as
   many connections as the services had claim loops, on T fresh timers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from telehealth.reactions import upgrade_database

sys.path.insert(0, str(Path(__file__).parent))
import bench_audit

ADMIN_DSN = os.environ.get(
    "TELEHEALTH_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TIME_BOUND_S = 240
BATCH = int(os.environ.get("TELEHEALTH_TIMER_BATCH_SIZE", "100"))
LOOPS_PER_PROCESS = int(os.environ.get("TELEHEALTH_TIMER_WORKERS", "2"))

CLAIM = """
UPDATE timer SET state = 'running', lease_until = $1, claimed_by = $2, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM timer
    WHERE ((state = 'pending' AND due_at <= $3) OR (state = 'running' AND lease_until < $3))
      AND kind = $4
    ORDER BY due_at LIMIT $5 FOR UPDATE SKIP LOCKED)
RETURNING id, kind, subject_id, due_at, attempts, payload
"""
DONE = """
UPDATE timer SET state = 'done', fired_at = $1, lease_until = NULL, last_error = NULL
WHERE id = ANY($2) AND claimed_by = $3 AND state = 'running'
"""


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_dsn(name: str) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


async def admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def write_timers(pool: asyncpg.Pool, kind: str, count: int, due: datetime) -> None:
    now = datetime.now(UTC)
    rows = [(uuid.uuid4(), kind, uuid.uuid4(), due, "pending", 0, "{}", now) for _ in range(count)]
    await pool.executemany(
        "INSERT INTO timer (id, kind, subject_id, due_at, state, attempts, payload, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
        rows,
    )


async def outcome(pool: asyncpg.Pool, kind: str, action: str) -> dict[str, Any]:
    lags = [
        r["lag"]
        for r in await pool.fetch(
            "SELECT extract(epoch FROM fired_at - due_at)::float8 AS lag FROM timer"
            " WHERE kind = $1 AND state = 'done'",
            kind,
        )
    ]
    total = await pool.fetchval("SELECT count(*) FROM timer WHERE kind = $1", kind)
    effects, distinct = await pool.fetchrow(
        "SELECT count(*), count(DISTINCT entity_id) FROM audit_event WHERE action = $1", action
    )
    lags.sort()
    cuts = statistics.quantiles(lags, n=100, method="inclusive") if len(lags) > 1 else [0.0] * 99
    return {
        "fired": len(lags),
        "missed": int(total) - len(lags),
        "duplicates": int(effects) - int(distinct),
        "lag_p50_s": round(cuts[49], 3),
        "lag_p99_s": round(cuts[98], 3),
        "lag_max_s": round(lags[-1], 3) if lags else None,
    }


async def wait_until_done(pool: asyncpg.Pool, kind: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        left = await pool.fetchval(
            "SELECT count(*) FROM timer WHERE kind = $1 AND state <> 'done'", kind
        )
        if left == 0:
            return
        await asyncio.sleep(0.2)


async def start_services(dsn: str, processes: int, data_dir: Path) -> list[Any]:
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    environment = {
        **os.environ,
        "TELEHEALTH_DATABASE_URL": url,
        "TELEHEALTH_SECRET_KEY": secrets.token_urlsafe(32),
        "TELEHEALTH_DATA_DIR": str(data_dir),
        "TELEHEALTH_TIMER_TEST_HANDLERS": "1",
        "TELEHEALTH_TIMER_BATCH_SIZE": str(BATCH),
        "TELEHEALTH_TIMER_WORKERS": str(LOOPS_PER_PROCESS),
        "TELEHEALTH_LOG_LEVEL": "WARNING",
    }
    command = str(Path(sys.executable).parent / "telehealth")
    ports = [free_port() for _ in range(processes)]
    started = [
        await asyncio.create_subprocess_exec(
            command,
            "serve",
            "--port",
            str(port),
            "--no-migrate",
            env=environment,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=(data_dir / f"serve-{port}.log").open("ab"),
        )
        for port in ports
    ]
    async with httpx.AsyncClient(timeout=2) as http:
        for port in ports:
            for _ in range(600):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"service on port {port} did not start")
    return started


async def stop_services(services: list[Any]) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL for any process still there after 30 s."""
    for process in services:
        if process.returncode is None:
            process.terminate()
    for process in services:
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            say(f"service {process.pid} did not stop on SIGTERM; killing it")
            process.kill()
            await process.wait()


def effect(timer: asyncpg.Record, fired_at: datetime) -> dict[str, Any]:
    """The test kind's audit row (``telehealth.timer_test_kinds``), as the bare loop writes it."""
    return {
        "id": uuid.uuid4(),
        "recorded_at": fired_at,
        "actor_kind": "timer",
        "actor_id": str(timer["id"]),
        "actor_name": None,
        "action": "timer.bare",
        "entity_type": "Timer",
        "entity_id": str(timer["subject_id"]),
        "patient_id": None,
        "outcome": "success",
        "ip": None,
        "user_agent": None,
        "request_id": None,
        "detail": None,
    }


async def bare_loop(dsn: str, kind: str, deadline: float) -> None:
    """The same claim / fire transactions as the service, on one bare asyncpg connection."""
    connection = await asyncpg.connect(dsn)
    worker = f"bare:{secrets.token_hex(3)}"
    try:
        while time.monotonic() < deadline:
            now = datetime.now(UTC)
            async with connection.transaction():
                rows = await connection.fetch(
                    CLAIM, now + timedelta(seconds=60), worker, now, kind, BATCH
                )
            if not rows:
                return
            async with connection.transaction():
                fired_at = datetime.now(UTC)
                await bench_audit.append_audit(connection, [effect(r, fired_at) for r in rows])
                await connection.execute(DONE, fired_at, [r["id"] for r in rows], worker)
    finally:
        await connection.close()


async def main(timers: int, processes: int) -> dict[str, Any]:
    deadline = time.monotonic() + TIME_BOUND_S
    name = f"th_bench_timers_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    dsn = database_dsn(name)
    services: list[Any] = []
    try:
        await asyncio.to_thread(
            upgrade_database, dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        )
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        data_dir = Path(tempfile.mkdtemp(prefix=name))
        services = await start_services(dsn, processes, data_dir)
        say(f"{processes} service processes up; writing {timers} timers due in 3 s")
        due = datetime.now(UTC) + timedelta(seconds=3)
        await write_timers(pool, "test.count", timers, due)
        started = time.monotonic()
        await wait_until_done(pool, "test.count", deadline)
        waited = time.monotonic() - started
        service = await outcome(pool, "test.count", "timer.test")
        service_span = await pool.fetchval(
            "SELECT extract(epoch FROM max(fired_at) - min(due_at))::float8 FROM timer"
            " WHERE kind = 'test.count'"
        )
        say(f"service: {json.dumps(service)} (waited {waited:.1f} s)")

        say(f"bare asyncpg ceiling: {timers} timers, {processes * LOOPS_PER_PROCESS} connections")
        await write_timers(pool, "bench.bare", timers, datetime.now(UTC))
        began = datetime.now(UTC)
        await asyncio.gather(
            *(bare_loop(dsn, "bench.bare", deadline) for _ in range(processes * LOOPS_PER_PROCESS))
        )
        bare = await outcome(pool, "bench.bare", "timer.bare")
        bare_span = await pool.fetchval(
            "SELECT extract(epoch FROM max(fired_at) - $1::timestamptz)::float8 FROM timer"
            " WHERE kind = 'bench.bare'",
            began,
        )
        say(f"bare: {json.dumps(bare)}")
        await pool.close()
        await stop_services(services)
        services = []
    finally:
        await stop_services(services)
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    service_rate = service["fired"] / service_span if service_span else 0.0
    bare_rate = bare["fired"] / bare_span if bare_span else 0.0
    return {
        "timers": timers,
        "processes": processes,
        "lag_p50_s": service["lag_p50_s"],
        "lag_p99_s": service["lag_p99_s"],
        "lag_max_s": service["lag_max_s"],
        "duplicates": service["duplicates"],
        "missed": service["missed"],
        "service_timers_per_s": round(service_rate, 1),
        "bare_timers_per_s": round(bare_rate, 1),
        "ratio": round(service_rate / bare_rate, 3) if bare_rate else None,
        "bare_lag_p99_s": bare["lag_p99_s"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments.timers, arguments.processes))
    print(json.dumps(result), flush=True)
