"""The per-process scheduler: an APScheduler ``AsyncIOScheduler`` (in-memory job store) whose
interval jobs run the timer and delivery claim loops, and whose cron triggers start the daily
jobs. Every durable fact lives in the database; this object only decides *when* to look.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from telehealth.db import Database
from telehealth.settings import Settings
from telehealth.timers.engine import TimerEngine
from telehealth.timers.handlers import DailyJob, Handler
from telehealth.timers.metrics import LoopMetrics
from telehealth.timers.models import Timer, TimerState
from telehealth.timeutil import local, utcnow

log = logging.getLogger("telehealth.scheduler")

_DAILY_NAMESPACE = uuid.UUID("6f1d7d3e-5b8a-4d59-9a43-1d0c2f7b6a10")


def daily_timer_id(job: DailyJob, day: str) -> uuid.UUID:
    """The same id in every process for one job on one (local) day."""
    return uuid.uuid5(_DAILY_NAMESPACE, f"{job.name}:{day}")


async def enqueue_daily(db: Database, job: DailyJob, now: datetime | None = None) -> bool:
    """Write today's timer for ``job`` unless a process already did; True if this one did."""
    moment = now or utcnow()
    timer_id = daily_timer_id(job, local(moment).date().isoformat())
    values = {
        "id": timer_id,
        "kind": job.kind,
        "subject_id": timer_id,
        "due_at": moment,
        "state": TimerState.PENDING,
        "attempts": 0,
        "payload": {},
        "created_at": moment,
    }
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    async with db.unit_of_work() as session:
        result = await session.exec(
            insert(Timer).values(**values).on_conflict_do_nothing(index_elements=["id"])
        )
    return bool(result.rowcount)


class DeliveryLoop(Protocol):
    """The notification deliveries, run on the same tick as the timers."""

    metrics: LoopMetrics

    async def run_due(self) -> object: ...


class TimerService:
    """What one process runs: N timer claim loops, one delivery loop, the daily triggers."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        handlers: Mapping[str, Handler],
        daily_jobs: Sequence[DailyJob],
        delivery: DeliveryLoop,
    ) -> None:
        self.db = db
        self.settings = settings
        self.timer_metrics = LoopMetrics()
        self.delivery_metrics = delivery.metrics
        self.daily_jobs = daily_jobs
        # SQLite serialises writers anyway: one claim loop there.
        loops = 1 if db.dialect == "sqlite" else settings.timer_workers
        self.engines = [
            TimerEngine(db, settings, handlers, self.timer_metrics) for _ in range(loops)
        ]
        self.delivery = delivery
        self.scheduler = AsyncIOScheduler(timezone=settings.tz)
        self._running: set[asyncio.Task[object]] = set()

    def start(self) -> None:
        # APScheduler logs every run (several a second) and warns of each tick skipped while a
        # long drain runs: both are normal here. Failures are logged by ``_guarded``.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        every = IntervalTrigger(seconds=self.settings.timer_poll_s)
        first = utcnow()
        self.scheduler.add_job(
            self._guarded(self._fire_timers),
            every,
            id="timers",
            name="fire due timers",
            max_instances=1,
            coalesce=True,
            next_run_time=first,
        )
        self.scheduler.add_job(
            self._guarded(self.delivery.run_due),
            every,
            id="deliveries",
            name="deliver due notifications",
            max_instances=1,
            coalesce=True,
            next_run_time=first,
        )
        for job in self.daily_jobs:
            self.scheduler.add_job(
                self._guarded(partial(enqueue_daily, self.db, job)),
                CronTrigger(hour=job.at.hour, minute=job.at.minute, timezone=self.settings.tz),
                id=job.kind,
                name=f"write the daily timer {job.kind}",
                max_instances=1,
                coalesce=True,
            )
        self.scheduler.start()

    async def stop(self) -> None:
        for engine in self.engines:
            engine.stop()
        self.scheduler.shutdown(wait=False)
        if self._running:
            await asyncio.wait(self._running, timeout=10)

    async def _fire_timers(self) -> object:
        return await asyncio.gather(*(engine.run_due() for engine in self.engines))

    def _guarded(self, work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """A job that logs its failure (the database may be away) and is awaited on stop."""

        async def job() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await work()
            except Exception:
                log.exception("scheduled job failed; retrying at the next tick")
            finally:
                if task is not None:
                    self._running.discard(task)

        return job
