"""Timer kinds for tests and the benchmark only, registered by the composition root when
``TELEHEALTH_TIMER_TEST_HANDLERS=1`` (never in production).

``test.count`` writes one audit row per run and is deliberately *not* idempotent: counting its
rows per subject measures the claim loop itself (one row per timer means fired once, no more).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import Actor, append_audit, audit_row
from telehealth.auth.models import AuditOutcome
from telehealth.timers.handlers import Batched, Handler, TimerCall
from telehealth.timeutil import utcnow

TEST_EFFECT_ACTION = "timer.test"


async def count_firings(session: AsyncSession, calls: Sequence[TimerCall]) -> None:
    """One audit row per timer per run, written in one statement for the batch (the
    benchmark measures the loop, not the ORM); ``payload.sleep_s`` keeps the handler busy
    (for a process to be killed in the middle of it)."""
    delay = max((float(call.payload.get("sleep_s", 0)) for call in calls), default=0.0)
    if delay > 0:
        await asyncio.sleep(delay)
    now = utcnow()
    await append_audit(
        session,
        [
            audit_row(
                Actor("timer", str(call.timer_id), None),
                TEST_EFFECT_ACTION,
                "Timer",
                str(call.subject_id),
                AuditOutcome.SUCCESS,
                recorded_at=now,
            )
            for call in calls
        ],
    )


async def count_firing(session: AsyncSession, call: TimerCall) -> None:
    """The same effect, as a plain one-timer handler."""
    await count_firings(session, [call])


async def always_fail(session: AsyncSession, call: TimerCall) -> None:
    raise RuntimeError(f"test failure on attempt {call.attempt}")


TEST_HANDLERS: dict[str, Handler] = {
    "test.count": Batched(count_firings),
    "test.count_one": count_firing,
    "test.fail": always_fail,
}
