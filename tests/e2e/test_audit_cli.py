"""The audit log's hash chain, as an operator checks it: ``telehealth audit verify`` names the
first row someone changed, deleted or inserted by hand in SQL; rows past the retention period
are pruned by the daily job and the rest still verifies; ``telehealth audit export`` writes
JSON lines that a log server re-checks with nothing but hashlib."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from telehealth.auth.audit import append_audit
from telehealth.auth.models import AuditOutcome
from telehealth.db import Database
from telehealth.models import new_id
from telehealth.settings import Settings
from telehealth.timer_registry import DAILY_JOBS, timer_handlers
from telehealth.timers.engine import TimerEngine
from telehealth.timers.runner import enqueue_daily
from telehealth.timeutil import utcnow
from tests.e2e.cli_support import TELEHEALTH, cli_env
from tests.helpers import sign_in


async def telehealth(
    database_url: str, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (off the event loop the test server runs on)."""
    return await asyncio.to_thread(
        subprocess.run,
        [TELEHEALTH, *args],
        env=cli_env(database_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def activity(client: httpx.AsyncClient) -> None:
    """Audit rows written the ways the service writes them: logins (one refused), an audited
    API search and a FHIR search (the read path, with its own transaction)."""
    doctor = await sign_in(client, "bs.xa1")
    wrong = await client.post("/api/auth/login", json={"username": "bs.xa1", "password": "x" * 12})
    assert wrong.status_code == 401
    assert (await client.get("/api/patients", params={"name": "nguyen"}, headers=doctor)).is_success
    assert (await client.get("/fhir/Patient", params={"name": "nguyen"}, headers=doctor)).is_success


async def sql(db: Database, statement: str, **params: Any) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text(statement), params)


async def audit_ids(db: Database) -> dict[int, str]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(text("SELECT seq, id FROM audit_event ORDER BY seq"))
        return {seq: str(row_id) for seq, row_id in rows}


def as_text(row_id: str) -> str:
    """An id as the error names it (SQLite returns the stored hex; compare without dashes)."""
    return row_id.replace("-", "")


async def test_verify_passes_on_the_chain_the_service_wrote(
    client: httpx.AsyncClient, db: Database, database_url: str, tmp_path: Path
) -> None:
    await activity(client)
    written = len(await audit_ids(db))
    assert written == 4
    done = await telehealth(database_url, tmp_path, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert f"audit chain intact: {written} rows" in done.stdout
    assert f"up to seq {written}" in done.stdout


async def test_verify_names_a_row_changed_in_sql(
    client: httpx.AsyncClient, db: Database, database_url: str, tmp_path: Path
) -> None:
    await activity(client)
    ids = await audit_ids(db)
    await sql(db, "UPDATE audit_event SET outcome = 'success' WHERE seq = 2")
    done = await telehealth(database_url, tmp_path, "audit", "verify")
    assert done.returncode == 1
    assert "audit row seq 2" in done.stderr and "was changed" in done.stderr
    assert as_text(ids[2]) in done.stderr.replace("-", "")
    assert "1 rows before it verified" in done.stderr
    assert "Traceback" not in done.stderr


async def test_verify_names_a_row_deleted_in_sql(
    client: httpx.AsyncClient, db: Database, database_url: str, tmp_path: Path
) -> None:
    await activity(client)
    await sql(db, "DELETE FROM audit_event WHERE seq = 3")
    done = await telehealth(database_url, tmp_path, "audit", "verify")
    assert done.returncode == 1
    assert "audit row seq 3 is missing: the row was deleted" in done.stderr


async def test_verify_names_a_row_inserted_in_sql(
    client: httpx.AsyncClient, db: Database, database_url: str, tmp_path: Path
) -> None:
    """A forged row copied from a real one (its hashes too), given the next seq."""
    await activity(client)
    ids = await audit_ids(db)
    newest = max(ids)
    forged = new_id()
    columns = (
        "recorded_at, actor_kind, actor_id, actor_name, action, entity_type, entity_id, "
        "patient_id, outcome, ip, user_agent, request_id, detail, prev_hash, hash"
    )
    await sql(
        db,
        f"INSERT INTO audit_event (id, seq, {columns}) "  # noqa: S608 (a fixed column list)
        f"SELECT :forged, :seq, {columns} FROM audit_event WHERE seq = 1",
        forged=forged if db.dialect == "postgresql" else forged.hex,
        seq=newest + 1,
    )
    done = await telehealth(database_url, tmp_path, "audit", "verify")
    assert done.returncode == 1
    assert f"audit row seq {newest + 1}" in done.stderr
    assert "a row was inserted here" in done.stderr
    assert forged.hex in done.stderr.replace("-", "")
    assert f"{newest} rows before it verified" in done.stderr


def old_row(days_ago: int) -> dict[str, object]:
    return {
        "id": new_id(),
        "recorded_at": utcnow() - timedelta(days=days_ago),
        "actor_kind": "user",
        "actor_id": "someone",
        "actor_name": "Người cũ",
        "action": "read",
        "entity_type": "Patient",
        "entity_id": str(new_id()),
        "patient_id": new_id(),
        "outcome": AuditOutcome.SUCCESS,
        "ip": "10.0.0.1",
        "user_agent": None,
        "request_id": None,
        "detail": None,
    }


async def prune_by_the_daily_job(db: Database, settings: Settings) -> int:
    """Runs today's ``daily.prune_audit`` timer; how many timers fired (0: the job failed)."""
    job = next(job for job in DAILY_JOBS if job.name == "prune_audit")
    now = utcnow()
    assert await enqueue_daily(db, job, now)
    return await TimerEngine(db, settings, timer_handlers(settings)).run_due(now)


async def test_pruned_chain_still_verifies_and_tampering_after_it_is_named(
    client: httpx.AsyncClient, db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    async with db.unit_of_work() as session:
        await append_audit(session, [old_row(days_ago=400) for _ in range(4)])
    await activity(client)
    before = await audit_ids(db)

    keep_a_year = settings.model_copy(update={"audit_retention_days": 365})
    assert await prune_by_the_daily_job(db, keep_a_year) == 1
    after = await audit_ids(db)
    assert min(after) == 5 and after == {seq: before[seq] for seq in before if seq > 4}
    async with db.engine.connect() as connection:
        checkpoint = (
            await connection.execute(text("SELECT seq, pruned_rows FROM audit_checkpoint"))
        ).all()
    assert [tuple(row) for row in checkpoint] == [(4, 4)]
    done = await telehealth(database_url, tmp_path, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert f"{len(after)} rows verified after the checkpoint at seq 4" in done.stdout

    await sql(db, "DELETE FROM audit_event WHERE seq = 5")
    done = await telehealth(database_url, tmp_path, "audit", "verify")
    assert done.returncode == 1
    assert "audit row seq 5 is missing" in done.stderr


async def test_prune_keeps_a_tampered_chain_for_the_investigation(
    db: Database, settings: Settings
) -> None:
    async with db.unit_of_work() as session:
        await append_audit(session, [old_row(days_ago=400) for _ in range(3)])
    await sql(db, "UPDATE audit_event SET actor_name = 'someone else' WHERE seq = 2")
    keep_a_year = settings.model_copy(update={"audit_retention_days": 365})
    assert await prune_by_the_daily_job(db, keep_a_year) == 0  # failed, to be retried
    assert sorted(await audit_ids(db)) == [1, 2, 3]  # nothing deleted


def rechecked(lines: list[str]) -> list[dict[str, Any]]:
    """What a log server does with an export: each line's hash is the SHA-256 of the line
    without ``hash`` (sorted keys, no spaces, UTF-8), and names the line before it."""
    rows = [json.loads(line) for line in lines]
    for before, row in zip([None, *rows], rows, strict=False):
        content = {key: value for key, value in row.items() if key != "hash"}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == row["hash"], row
        if before is not None:
            assert row["prev_hash"] == before["hash"] and row["seq"] == before["seq"] + 1
    return rows


async def test_export_writes_json_lines_a_log_server_can_recheck(
    client: httpx.AsyncClient, db: Database, database_url: str, tmp_path: Path
) -> None:
    async with db.unit_of_work() as session:
        await append_audit(session, [old_row(days_ago=30), old_row(days_ago=20)])
    await activity(client)
    ids = await audit_ids(db)

    out = tmp_path / "audit.jsonl"
    out.write_text("an older export, readable by all\n")
    out.chmod(0o644)
    done = await telehealth(database_url, tmp_path, "audit", "export", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"exported {len(ids)} audit rows" in done.stderr
    assert out.stat().st_mode & 0o077 == 0  # the audit names patients: the owner's only
    rows = rechecked(out.read_text(encoding="utf-8").splitlines())
    assert [row["seq"] for row in rows] == sorted(ids)
    assert rows[0]["prev_hash"] == "0" * 64
    assert rows[0]["actor_name"] == "Người cũ"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", rows[0]["recorded_at"])

    since = (utcnow() - timedelta(days=25)).strftime("%Y-%m-%dT%H:%M:%S")
    done = await telehealth(database_url, tmp_path, "audit", "export", "--since", since)
    assert done.returncode == 0, done.stderr
    recent = rechecked(done.stdout.splitlines())
    assert [row["seq"] for row in recent] == sorted(ids)[1:]

    done = await telehealth(database_url, tmp_path, "audit", "export", "--after-seq", "3")
    assert done.returncode == 0, done.stderr
    assert [row["seq"] for row in rechecked(done.stdout.splitlines())] == sorted(ids)[3:]
