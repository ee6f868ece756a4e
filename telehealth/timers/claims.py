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
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.db import table_of


def worker_name() -> str:
    """Who holds a lease: host, process id and a random tag (several loops per process)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


async def claim_due(
    session: AsyncSession,
    model: type[SQLModel],
    *,
    ready_states: Iterable[str],
    claimed_state: str,
    due_column: str,
    now: datetime,
    worker: str,
    lease_s: float,
    limit: int,
    returning: Sequence[str],
    where: Sequence[ColumnElement[bool]] = (),
) -> list[Any]:
    """Take up to ``limit`` rows that are due (or whose lease expired) and lease them."""
    c = table_of(model).c
    ready = and_(c.state.in_(list(ready_states)), c[due_column] <= now)
    expired = and_(c.state == claimed_state, c.lease_until < now)
    picked = (
        select(c.id)
        .where(or_(ready, expired), *where)
        .order_by(c[due_column])
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(table_of(model))
        .where(c.id.in_(picked.scalar_subquery()))
        .values(
            state=claimed_state,
            lease_until=now + timedelta(seconds=lease_s),
            claimed_by=worker,
            attempts=c.attempts + 1,
        )
        .returning(*(c[name] for name in returning))
    )
    result = await session.exec(statement)
    return list(result.all())


def held_by(model: type[SQLModel], ids: Iterable[uuid.UUID], worker: str, state: str) -> Any:
    """The condition that a row is still ours: a lost lease makes the final update a no-op."""
    c = table_of(model).c
    return and_(c.id.in_(list(ids)), c.claimed_by == worker, c.state == state)
