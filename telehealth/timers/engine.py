"""The timer claim loop: claim due timers in batches, run their handlers, mark them done.

A claimed batch runs in one unit of work (the handlers' writes and "done" commit together),
which keeps thousands of due timers cheap. If any handler of the batch raises, or a lease was
lost meanwhile, that transaction is rolled back and the batch re-runs one timer per unit of
work, so only the failing timer is retried (exponential backoff; dead after
``timer_max_attempts`` with the error kept). "Done" is a conditional update on the lease
holder, so a process whose lease expired can never commit a handler's effect a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.db import Database, table_of
from telehealth.settings import Settings
from telehealth.timers.claims import claim_due, held_by, worker_name
from telehealth.timers.handlers import Handler, TimerCall, run_handler
from telehealth.timers.metrics import LoopMetrics
from telehealth.timers.models import Timer, TimerState
from telehealth.timers.rules import RetryPolicy, short_error
from telehealth.timeutil import utcnow

log = logging.getLogger("telehealth.timers")


class LeaseLost(Exception):
    """Another process re-claimed the timer (our lease expired): our run must not count."""


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        settings.timer_max_attempts, settings.timer_retry_base_s, settings.timer_retry_max_s
    )


class TimerEngine:
    """One claim loop of one process (a process may run several)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        handlers: Mapping[str, Handler],
        metrics: LoopMetrics | None = None,
        worker: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.handlers = dict(handlers)
        self.metrics = metrics or LoopMetrics()
        self.worker = worker or worker_name()
        self.policy = retry_policy(settings)
        self.stopping = False

    async def run_due(self, now: datetime | None = None) -> int:
        """Claim and fire due timers until none is left (or ``stop()`` was called); returns
        how many fired. The transaction that marks one batch done also claims the next: one
        commit per batch instead of two. A short batch does not end the drain (other
        processes may hold the rest under SKIP LOCKED); only an empty claim does."""
        fired = 0
        calls = await self.claim(now)
        while calls and not self.stopping:
            done, following = await self._fire_batch(calls, now, claim_next=True)
            fired += done
            calls = following if following is not None else await self.claim(now)
        return fired

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run_due`` (shutdown)."""
        self.stopping = True

    async def claim(self, now: datetime | None = None) -> list[TimerCall]:
        async with self.db.unit_of_work() as session:
            calls = await self._claim_in(session, now)
        self.metrics.claimed += len(calls)
        return calls

    async def _claim_in(self, session: AsyncSession, now: datetime | None) -> list[TimerCall]:
        if not self.handlers:
            return []
        rows = await claim_due(
            session,
            Timer,
            ready_states=[TimerState.PENDING],
            claimed_state=TimerState.RUNNING,
            due_column="due_at",
            now=now or utcnow(),
            worker=self.worker,
            lease_s=self.settings.timer_lease_s,
            limit=self.settings.timer_batch_size,
            returning=["id", "kind", "subject_id", "due_at", "attempts", "payload"],
            where=[table_of(Timer).c.kind.in_(list(self.handlers))],
        )
        return [_call(row) for row in rows]

    async def fire(self, calls: Sequence[TimerCall], now: datetime | None = None) -> int:
        """Run the handlers of claimed timers; returns how many were marked done."""
        done, _ = await self._fire_batch(calls, now, claim_next=False)
        return done

    async def _fire_batch(
        self, calls: Sequence[TimerCall], now: datetime | None, *, claim_next: bool
    ) -> tuple[int, list[TimerCall] | None]:
        following: list[TimerCall] | None = None
        try:
            async with self.db.unit_of_work() as session:
                by_kind: dict[str, list[TimerCall]] = {}
                for call in calls:
                    by_kind.setdefault(call.kind, []).append(call)
                for kind, group in by_kind.items():
                    await run_handler(self.handlers[kind], session, group)
                fired_at = utcnow()
                await self._mark_done(session, calls, fired_at)
                if claim_next:
                    following = await self._claim_in(session, now)
        except Exception:
            done = 0
            for call in calls:
                done += await self._fire_alone(call, now)
            return done, None
        self._count_fired(calls, fired_at)
        self.metrics.claimed += len(following or ())
        return len(calls), following

    async def _fire_alone(self, call: TimerCall, now: datetime | None) -> int:
        try:
            async with self.db.unit_of_work() as session:
                await run_handler(self.handlers[call.kind], session, [call])
                fired_at = utcnow()
                await self._mark_done(session, [call], fired_at)
        except LeaseLost:
            self.metrics.lease_lost += 1
            return 0
        except Exception as exc:
            log.warning("timer %s (%s) failed: %s", call.timer_id, call.kind, short_error(exc))
            await self._record_failure(call, exc, now or utcnow())
            return 0
        self._count_fired([call], fired_at)
        return 1

    async def _mark_done(
        self, session: AsyncSession, calls: Sequence[TimerCall], fired_at: datetime
    ) -> None:
        result = await session.exec(
            update(table_of(Timer))
            .where(held_by(Timer, [c.timer_id for c in calls], self.worker, TimerState.RUNNING))
            .values(state=TimerState.DONE, fired_at=fired_at, lease_until=None, last_error=None)
        )
        if result.rowcount != len(calls):
            raise LeaseLost(f"{len(calls) - result.rowcount} timer(s) re-claimed meanwhile")

    async def _record_failure(self, call: TimerCall, exc: Exception, now: datetime) -> None:
        retry_at = self.policy.next_attempt(call.attempt, now)
        values: dict[str, Any] = {"last_error": short_error(exc), "lease_until": None}
        if retry_at is None:
            values["state"] = TimerState.DEAD
        else:
            values.update(state=TimerState.PENDING, due_at=retry_at)
        async with self.db.unit_of_work() as session:
            result = await session.exec(
                update(table_of(Timer))
                .where(held_by(Timer, [call.timer_id], self.worker, TimerState.RUNNING))
                .values(**values)
            )
        if result.rowcount:
            self.metrics.failed += 1
            if retry_at is None:
                self.metrics.dead += 1
                log.error(
                    "timer %s (%s) is dead after %d attempts",
                    call.timer_id,
                    call.kind,
                    call.attempt,
                )

    def _count_fired(self, calls: Sequence[TimerCall], fired_at: datetime) -> None:
        for call in calls:
            self.metrics.record_fired(call.due_at, fired_at, self.settings.timer_late_s)


def _call(row: Sequence[Any]) -> TimerCall:
    return TimerCall(
        timer_id=row[0],
        kind=row[1],
        subject_id=row[2],
        due_at=row[3],
        attempt=row[4],
        payload=dict(row[5] or {}),
    )
