"""The registry of timer handlers and daily jobs: the one place a timer kind gets its code.

A handler is a top-level async function ``(session, call) -> None``. It runs inside a unit
of work opened by the claim loop, which marks the timer done in the same transaction; so its
database writes and "done" commit together or not at all. It must still be idempotent (act
only if the state is still what it expects): a re-claim after a lost lease runs it again.
A handler writes rows only; anything leaving the machine (e-mail, webhook, push) is a
notification row (``telehealth.notifications.service.notify``), delivered afterwards.

To add a kind: write the handler in its area (e.g. ``telehealth/consults/timers.py``) and add
one line to ``DOMAIN_HANDLERS`` below (wrap it in ``Batched`` if it takes a whole batch). Daily work: add a ``DailyJob`` to ``DAILY_JOBS``. See
docs/timers.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.settings import Settings


@dataclass(frozen=True)
class TimerCall:
    """What a handler is told: which timer, about which row, with which payload."""

    timer_id: uuid.UUID
    kind: str
    subject_id: uuid.UUID
    due_at: datetime
    attempt: int
    payload: dict[str, Any] = field(default_factory=dict)


TimerHandler = Callable[[AsyncSession, TimerCall], Awaitable[None]]
BatchRun = Callable[[AsyncSession, Sequence[TimerCall]], Awaitable[None]]


@dataclass(frozen=True)
class Batched:
    """A handler that takes all the timers of its kind claimed together (one query for many
    subjects). If it raises, the loop calls it again with one timer at a time."""

    run: BatchRun


Handler = TimerHandler | Batched


async def run_handler(handler: Handler, session: AsyncSession, calls: Sequence[TimerCall]) -> None:
    if isinstance(handler, Batched):
        await handler.run(session, calls)
        return
    for call in calls:
        await handler(session, call)


@dataclass(frozen=True)
class DailyJob:
    """Work done once a day at ``at`` (Asia/Ho_Chi_Minh), across all processes together.

    Each process's cron trigger writes the day's timer (kind ``daily.<name>``) with an id
    derived from the name and the date, so however many processes run, it fires once, with the
    same retries and dead letter as any timer.
    """

    name: str
    at: time
    run: TimerHandler

    @property
    def kind(self) -> str:
        return f"daily.{self.name}"


# Kinds written by the consults area (issue 3); their handlers are wired here when it merges:
#   appointment.reminder  payload {"lead_minutes": N}   room.open   appointment.no_show
#   request.escalate      slot.hold_expire
DOMAIN_HANDLERS: dict[str, Handler] = {}

# e.g. DailyJob("extend_slot_horizon", time(2, 0), extend_slot_horizons)
DAILY_JOBS: list[DailyJob] = []


def timer_handlers(settings: Settings) -> Mapping[str, Handler]:
    """Every kind this process fires: the domain's, the daily jobs', and test kinds if asked."""
    handlers: dict[str, Handler] = dict(DOMAIN_HANDLERS)
    handlers.update({job.kind: job.run for job in DAILY_JOBS})
    if settings.timer_test_handlers:
        from telehealth.scheduling.testing import TEST_HANDLERS

        handlers.update(TEST_HANDLERS)
    return handlers
