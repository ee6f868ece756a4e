"""Writing timers: called by the use cases whose changes imply future work."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.scheduling.models import Timer, TimerState


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
