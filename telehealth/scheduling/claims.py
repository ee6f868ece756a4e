"""Claiming due rows under a lease: the one query both claim loops (timers, deliveries) use.

On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``, so several processes
claiming at once never wait on, nor take, each other's rows. SQLite ignores the locking
clause; there the whole transaction holds the database lock (``BEGIN IMMEDIATE``), which gives
the same guarantee for its single process. A row whose lease ran out (its process died) is
ready again; each claim counts one attempt, so a row that keeps killing its process ends dead.
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession


def worker_name() -> str:
    """Who holds a lease: host, process id and a random tag (several loops per process)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


async def claim_due(
    session: AsyncSession,
    model: type[SQLModel],
    *,
    ready_states: Iterable[str],
    claimed_state: str,
    due_column: Any,
    now: datetime,
    worker: str,
    lease_s: float,
    limit: int,
    returning: Sequence[Any],
    where: Sequence[ColumnElement[bool]] = (),
) -> list[Any]:
    """Take up to ``limit`` rows that are due (or whose lease expired) and lease them."""
    table: Any = model
    ready = and_(col(table.state).in_(list(ready_states)), col(due_column) <= now)
    expired = and_(col(table.state) == claimed_state, col(table.lease_until) < now)
    picked = (
        select(col(table.id))
        .where(or_(ready, expired), *where)
        .order_by(col(due_column))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(table)
        .where(col(table.id).in_(picked.scalar_subquery()))
        .values(
            state=claimed_state,
            lease_until=now + timedelta(seconds=lease_s),
            claimed_by=worker,
            attempts=col(table.attempts) + 1,
        )
        .returning(*returning)
    )
    result = await session.exec(statement)
    return list(result.all())


def held_by(model: type[SQLModel], ids: Iterable[uuid.UUID], worker: str, state: str) -> Any:
    """The condition that a row is still ours: a lost lease makes the final update a no-op."""
    table: Any = model
    return and_(
        col(table.id).in_(list(ids)),
        col(table.claimed_by) == worker,
        col(table.state) == state,
    )
