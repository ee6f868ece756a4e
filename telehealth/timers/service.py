"""Writing timers (called by the use cases whose changes imply future work)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.db import insert_rows, table_of
from telehealth.models import new_id
from telehealth.timers.models import Timer, TimerState
from telehealth.timeutil import utcnow


def schedule(
    session: AsyncSession,
    kind: str,
    subject_id: uuid.UUID,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
) -> Timer:
    """Add a timer to the current transaction; it fires at ``due_at`` if still pending."""
    timer = Timer(kind=kind, subject_id=subject_id, due_at=due_at, payload=payload or {})
    session.add(timer)
    return timer


class PlannedTimer(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def payload(self) -> dict[str, Any]: ...


async def schedule_all(
    session: AsyncSession, subject_id: uuid.UUID, planned: Iterable[PlannedTimer]
) -> None:
    """Add several timers of one subject with one multi-row INSERT (the booking hot path)."""
    now = utcnow()
    await insert_rows(
        session,
        table_of(Timer),
        [
            {
                "id": new_id(),
                "kind": timer.kind,
                "subject_id": subject_id,
                "due_at": timer.due_at,
                "state": TimerState.PENDING,
                "attempts": 0,
                "lease_until": None,
                "claimed_by": None,
                "last_error": None,
                "payload": timer.payload,
                "created_at": now,
                "fired_at": None,
            }
            for timer in planned
        ],
    )


async def cancel_timers(
    session: AsyncSession, subject_id: uuid.UUID, kinds: Iterable[str] | None = None
) -> int:
    """Cancel the pending timers of a subject (all, or those of some kinds)."""
    statement = (
        update(Timer)
        .where(col(Timer.subject_id) == subject_id)
        .where(col(Timer.state) == TimerState.PENDING)
        .values(state=TimerState.CANCELLED)
    )
    if kinds is not None:
        statement = statement.where(col(Timer.kind).in_(list(kinds)))
    result = await session.exec(statement)
    return int(result.rowcount)
