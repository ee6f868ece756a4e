"""Figures of the claim loops: this process's counters and the database's current backlog."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from statistics import quantiles

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.metrics import TIMER_LAG
from telehealth.timers.models import Timer, TimerState
from telehealth.timers.rules import is_late, lag_s


@dataclass
class LoopMetrics:
    """Counters since this process started (each process reports its own)."""

    claimed: int = 0
    fired: int = 0
    late: int = 0
    failed: int = 0
    dead: int = 0
    lease_lost: int = 0
    recent_lags_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def record_fired(self, due_at: datetime, fired_at: datetime, late_after_s: float) -> None:
        self.fired += 1
        lag = lag_s(due_at, fired_at)
        self.recent_lags_s.append(lag)
        TIMER_LAG.observe(lag)
        if is_late(due_at, fired_at, late_after_s):
            self.late += 1

    def lag_percentiles(self) -> dict[str, float | None]:
        lags = sorted(self.recent_lags_s)
        if len(lags) < 2:
            only = lags[0] if lags else None
            return {"p50": only, "p99": only, "max": only}
        cuts = quantiles(lags, n=100, method="inclusive")
        return {"p50": round(cuts[49], 3), "p99": round(cuts[98], 3), "max": round(lags[-1], 3)}


async def timer_backlog(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Timers by state from the database (all processes): ``due`` is pending and past due."""
    counts = {state.value: 0 for state in TimerState}
    rows = await session.exec(select(Timer.state, func.count()).group_by(col(Timer.state)))
    for state, count in rows.all():
        counts[str(state)] = int(count)
    due = await session.exec(
        select(func.count())
        .select_from(Timer)
        .where(col(Timer.state) == TimerState.PENDING, col(Timer.due_at) <= now)
    )
    counts["due"] = int(due.one())
    return counts
