"""What a timer handler is: the call it receives, the one-timer and batched forms, daily jobs.

A handler is a top-level async function ``(session, call) -> None``. It runs inside a unit
of work opened by the claim loop, which marks the timer done in the same transaction; so its
database writes and "done" commit together or not at all. It must still be idempotent (act
only if the state is still what it expects): a re-claim after a lost lease runs it again.
A handler writes rows only; anything leaving the machine (e-mail, webhook, push) is a
notification row (``telehealth.notifications.service.notify``), delivered afterwards.

Handlers are registered in ``telehealth/timer_registry.py``; see docs/timers.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
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


ConfiguredRun = Callable[[AsyncSession, TimerCall, Settings], Awaitable[None]]


@dataclass(frozen=True)
class Configured:
    """A handler that needs the process's settings (lead times, horizons, room windows): the
    registry binds them when it builds the process's handlers."""

    run: ConfiguredRun

    def bind(self, settings: Settings) -> TimerHandler:
        run = self.run

        async def handler(session: AsyncSession, call: TimerCall) -> None:
            await run(session, call, settings)

        return handler


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
    run: TimerHandler | Configured

    @property
    def kind(self) -> str:
        return f"daily.{self.name}"
