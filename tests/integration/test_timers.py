"""The timer claim loop on a real database (SQLite and PostgreSQL): fire once, retry with
backoff, dead letter, lease expiry, and daily jobs across processes."""

from __future__ import annotations

from datetime import time, timedelta

import httpx

from telehealth.db import Database
from telehealth.settings import Settings
from telehealth.timer_test_kinds import TEST_HANDLERS, count_firing
from telehealth.timers.engine import TimerEngine
from telehealth.timers.handlers import DailyJob
from telehealth.timers.models import Timer, TimerState
from telehealth.timers.runner import enqueue_daily
from telehealth.timeutil import utcnow
from tests.helpers import assert_problem, login
from tests.timer_helpers import add_timers, effects, timer_of


def engine(db: Database, settings: Settings, **changes: object) -> TimerEngine:
    return TimerEngine(db, settings.model_copy(update=changes), TEST_HANDLERS)


async def test_due_timers_fire_once_and_future_ones_wait(db: Database, settings: Settings) -> None:
    now = utcnow()
    due = await add_timers(db, "test.count", now - timedelta(seconds=1), count=3)
    (later,) = await add_timers(db, "test.count", now + timedelta(minutes=5))
    loop = engine(db, settings, timer_batch_size=2)

    assert await loop.run_due(now) == 3
    assert await loop.run_due(now) == 0
    for subject in due:
        assert await effects(db, subject) == 1
        timer = await timer_of(db, subject)
        assert timer.state == TimerState.DONE and timer.fired_at is not None
    assert await effects(db, later) == 0
    assert (await timer_of(db, later)).state == TimerState.PENDING

    assert await loop.run_due(now + timedelta(minutes=6)) == 1
    assert await effects(db, later) == 1


async def test_kinds_without_a_handler_wait_for_one(db: Database, settings: Settings) -> None:
    """A process that does not know a kind (older code during a rollout) leaves it alone."""
    now = utcnow()
    (subject,) = await add_timers(db, "consult.not_wired_yet", now - timedelta(seconds=1))
    assert await engine(db, settings).run_due(now) == 0
    timer = await timer_of(db, subject)
    assert timer.state == TimerState.PENDING and timer.attempts == 0


async def test_failing_handler_backs_off_then_is_dead_with_its_error(
    db: Database, settings: Settings
) -> None:
    loop = engine(db, settings, timer_max_attempts=3, timer_retry_base_s=10)
    start = utcnow()
    (bad,) = await add_timers(db, "test.fail", start)
    (good,) = await add_timers(db, "test.count", start)

    assert await loop.run_due(start) == 1  # the good one of the batch still fires
    assert await effects(db, good) == 1
    failed = await timer_of(db, bad)
    assert failed.state == TimerState.PENDING and failed.attempts == 1
    assert failed.due_at == start + timedelta(seconds=10)
    assert failed.last_error == "RuntimeError: test failure on attempt 1"

    assert await loop.run_due(start + timedelta(seconds=9)) == 0
    assert (await timer_of(db, bad)).attempts == 1  # not yet due again: not claimed

    second = start + timedelta(seconds=11)
    await loop.run_due(second)
    retried = await timer_of(db, bad)
    assert retried.attempts == 2 and retried.due_at == second + timedelta(seconds=20)

    await loop.run_due(second + timedelta(seconds=21))
    dead = await timer_of(db, bad)
    assert dead.state == TimerState.DEAD and dead.attempts == 3
    assert dead.last_error == "RuntimeError: test failure on attempt 3"
    assert await loop.run_due(second + timedelta(days=1)) == 0
    assert loop.metrics.failed == 3 and loop.metrics.dead == 1


async def test_expired_lease_is_reclaimed_and_fires_once(db: Database, settings: Settings) -> None:
    """A process claims and dies; once its lease runs out another one fires the timer."""
    now = utcnow()
    (subject,) = await add_timers(db, "test.count", now)
    crashed = engine(db, settings, timer_lease_s=30)
    survivor = engine(db, settings, timer_lease_s=30)

    assert len(await crashed.claim(now)) == 1
    assert await survivor.run_due(now + timedelta(seconds=29)) == 0  # lease still held
    assert await survivor.run_due(now + timedelta(seconds=31)) == 1
    timer = await timer_of(db, subject)
    assert timer.state == TimerState.DONE and timer.attempts == 2
    assert await effects(db, subject) == 1


async def test_handler_run_twice_after_lost_lease_has_one_effect(
    db: Database, settings: Settings
) -> None:
    """A slow process whose lease expired finishes after the re-claimer: its run (the second
    run of the same handler) is rolled back, so the effect exists once."""
    now = utcnow()
    subjects = await add_timers(db, "test.count", now, count=2)
    slow = engine(db, settings, timer_lease_s=5)
    fast = engine(db, settings, timer_lease_s=5)

    slow_calls = await slow.claim(now)
    fast_calls = await fast.claim(now + timedelta(seconds=6))
    assert {c.timer_id for c in slow_calls} == {c.timer_id for c in fast_calls}
    assert await fast.fire(fast_calls) == 2
    assert await slow.fire(slow_calls) == 0
    assert slow.metrics.lease_lost == 2
    for subject in subjects:
        assert await effects(db, subject) == 1


async def test_daily_job_is_written_once_whatever_the_processes(
    db: Database, settings: Settings
) -> None:
    job = DailyJob("test_nightly", time(2, 0), count_firing)
    now = utcnow()
    written = [await enqueue_daily(db, job, now) for _ in range(3)]
    assert written == [True, False, False]
    loop = TimerEngine(db, settings, {job.kind: job.run})
    assert await loop.run_due(now) == 1
    assert await enqueue_daily(db, job, now) is False  # done today: not again
    assert await enqueue_daily(db, job, now + timedelta(days=1)) is True


async def test_metrics_for_administrators_only(client: httpx.AsyncClient, db: Database) -> None:
    now = utcnow()
    await add_timers(db, "test.count", now - timedelta(minutes=1), count=2)
    await add_timers(db, "test.count", now + timedelta(hours=1))
    admin = await login(client, "quantri")
    response = await client.get("/api/admin/timers/metrics", headers=admin)
    assert response.status_code == 200, response.text
    figures = response.json()
    assert figures["database"]["due"] == 2
    assert figures["database"]["pending"] == 3
    assert figures["database"]["dead"] == 0

    doctor = await login(client, "bs.tim")
    assert_problem(await client.get("/api/admin/timers/metrics", headers=doctor), 403)


async def test_timer_rows_unchanged_by_a_refused_claim(db: Database, settings: Settings) -> None:
    """Claiming with no handler at all touches nothing."""
    now = utcnow()
    (subject,) = await add_timers(db, "test.count", now)
    assert await TimerEngine(db, settings, {}).run_due(now) == 0
    timer: Timer = await timer_of(db, subject)
    assert timer.attempts == 0 and timer.claimed_by is None
