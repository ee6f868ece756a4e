"""Timer kinds for tests and the benchmark only, registered when
``TELEHEALTH_TIMER_TEST_HANDLERS=1`` (never in production).

``test.count`` writes one audit row per run and is deliberately *not* idempotent: counting its
rows per subject measures the claim loop itself (one row per timer means fired once, no more).
"""

from __future__ import annotations

import asyncio

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import AuditEvent, AuditOutcome
from telehealth.scheduling.handlers import TimerCall, TimerHandler

TEST_EFFECT_ACTION = "timer.test"


async def count_firing(session: AsyncSession, call: TimerCall) -> None:
    """One audit row per run; ``payload.sleep_s`` keeps the handler busy (to be killed in)."""
    delay = float(call.payload.get("sleep_s", 0))
    if delay > 0:
        await asyncio.sleep(delay)
    session.add(
        AuditEvent(
            actor_kind="timer",
            actor_id=str(call.timer_id),
            action=TEST_EFFECT_ACTION,
            entity_type="Timer",
            entity_id=str(call.subject_id),
            outcome=AuditOutcome.SUCCESS,
        )
    )


async def always_fail(session: AsyncSession, call: TimerCall) -> None:
    raise RuntimeError(f"test failure on attempt {call.attempt}")


TEST_HANDLERS: dict[str, TimerHandler] = {"test.count": count_firing, "test.fail": always_fail}
