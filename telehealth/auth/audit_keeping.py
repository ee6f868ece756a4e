"""Keeping the audit log: check its hash chain, delete rows past the retention period, and
export it as JSON lines for a central log server (``telehealth audit verify|export``).

Rows are read in pages of ``PAGE`` in chain order, each page on a connection of its own, so
that neither memory nor a transaction grows with the size of the log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit_chain import START, ChainBreak, Link, canonical, check_row
from telehealth.auth.models import AuditCheckpoint, AuditEvent
from telehealth.db import Database, table_of
from telehealth.settings import Settings
from telehealth.timers.handlers import TimerCall
from telehealth.timeutil import utcnow

PAGE = 1000
_AUDIT = table_of(AuditEvent)
_CHECKPOINT = table_of(AuditCheckpoint)


async def _page(
    connection: AsyncConnection, after: int, upto: int | None = None
) -> list[dict[str, Any]]:
    query = sa.select(_AUDIT).where(_AUDIT.c.seq > after)
    if upto is not None:
        query = query.where(_AUDIT.c.seq <= upto)
    result = await connection.execute(query.order_by(_AUDIT.c.seq).limit(PAGE))
    return [dict(row) for row in result.mappings()]


async def _rows(db: Database, after: int) -> AsyncIterator[dict[str, Any]]:
    """Every row after seq ``after``, in chain order."""
    while True:
        async with db.engine.connect() as connection:
            page = await _page(connection, after)
        if not page:
            return
        for row in page:
            yield row
        after = page[-1]["seq"]


async def _checkpoint(connection: AsyncConnection) -> Link:
    """Where verification starts: the newest checkpoint, or before the first row ever."""
    newest = (
        await connection.execute(
            sa.select(_CHECKPOINT.c.seq, _CHECKPOINT.c.hash)
            .order_by(_CHECKPOINT.c.seq.desc())
            .limit(1)
        )
    ).first()
    return START if newest is None else Link(newest.seq, newest.hash)


@dataclass
class Verification:
    start: Link
    tail: Link
    rows: int = 0
    broken: ChainBreak | None = None

    def step(self, row: dict[str, Any]) -> bool:
        """Check the next row; False (and ``broken`` set) at the first that is not right."""
        self.broken = check_row(row, self.tail)
        if self.broken is None:
            self.tail = Link(row["seq"], row["hash"])
            self.rows += 1
        return self.broken is None


async def verify_chain(db: Database) -> Verification:
    """Walk the chain from the newest checkpoint to the newest row, stopping at the first row
    that was changed, deleted or inserted by someone other than the service."""
    async with db.engine.connect() as connection:
        start = await _checkpoint(connection)
    verification = Verification(start, start)
    async for row in _rows(db, start.seq):
        if not verification.step(row):
            break
    return verification


class BrokenChain(RuntimeError):
    """The rows to be pruned do not verify: deleting them would erase the evidence. The daily
    job fails (retried, then dead-lettered, as any timer) until someone looks."""


async def prune_audit(session: AsyncSession, recorded_before: datetime) -> int:
    """Delete the oldest rows, as long as every row before them is older than
    ``recorded_before`` too (the chain is cut at one point, never with holes), and record a
    checkpoint: the last deleted row's seq and hash, from which what stays still verifies.
    The rows are verified first; a broken chain is kept for whoever investigates it."""
    connection = await session.connection()
    first_kept = (
        await connection.execute(
            sa.select(sa.func.min(_AUDIT.c.seq)).where(_AUDIT.c.recorded_at >= recorded_before)
        )
    ).scalar()
    last = sa.select(_AUDIT.c.seq).order_by(_AUDIT.c.seq.desc()).limit(1)
    if first_kept is not None:
        last = last.where(_AUDIT.c.seq < first_kept)
    upto = (await connection.execute(last)).scalar()
    if upto is None:
        return 0
    verification = Verification(start := await _checkpoint(connection), start)
    while verification.tail.seq < upto:
        page = await _page(connection, verification.tail.seq, upto)
        if not page or not all(verification.step(row) for row in page):
            raise BrokenChain(f"not pruned: {verification.broken or 'rows are missing'}")
    deleted = await connection.execute(_AUDIT.delete().where(_AUDIT.c.seq <= upto))
    await connection.execute(
        _CHECKPOINT.insert().values(
            seq=upto,
            hash=verification.tail.hash,
            pruned_at=utcnow(),
            pruned_rows=deleted.rowcount,
            recorded_before=recorded_before,
        )
    )
    return int(deleted.rowcount)


async def prune_audit_daily(session: AsyncSession, call: TimerCall, settings: Settings) -> None:
    """The daily job: rows older than ``audit_retention_days`` go."""
    await prune_audit(session, utcnow() - timedelta(days=settings.audit_retention_days))


async def export_lines(
    db: Database, out: TextIO, since: datetime | None = None, after_seq: int = 0
) -> int:
    """Write the chain as JSON lines (the hashed fields plus ``hash``; see ``audit_chain``) to
    the newest row, from the first row recorded at or after ``since`` and after seq
    ``after_seq`` (where the last export ended), every row in between included so that a
    reader can check the links. Returns the count."""
    after = after_seq
    if since is not None:
        async with db.engine.connect() as connection:
            first = (
                await connection.execute(
                    sa.select(sa.func.min(_AUDIT.c.seq)).where(_AUDIT.c.recorded_at >= since)
                )
            ).scalar()
        if first is None:
            return 0
        after = max(after, first - 1)
    written = 0
    async for row in _rows(db, after):
        line = canonical(row) | {"hash": row["hash"]}
        out.write(json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
        written += 1
    return written
