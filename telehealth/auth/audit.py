"""The audit log: every read or write of patient data, with its outcome.

Services call ``caller.note(...)`` before they act; ``audited_unit_of_work`` writes those notes
in the same transaction when the use case succeeds, and in a transaction of their own, marked
denied or failed, when it raises: a refused access is recorded even though nothing else is.

Every row is appended to a hash chain (``auth.audit_chain``) by ``append_audit``, the one
function that writes audit rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_account_admin
from telehealth.auth.audit_chain import START, Link, chained
from telehealth.auth.models import AuditCheckpoint, AuditEvent, AuditOutcome
from telehealth.auth.principal import Caller, RequestOrigin
from telehealth.db import Database, Prepared, core_connection, table_of, write_rows
from telehealth.errors import (
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TelehealthError,
)
from telehealth.timeutil import as_utc, utcnow

NOWHERE = RequestOrigin()  # a row not written for a request (a timer, the CLI)


@dataclass(frozen=True)
class Actor:
    """Who an audit row names as acting."""

    kind: str
    id: str | None
    name: str | None


def audit_row(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str | None,
    outcome: AuditOutcome,
    *,
    patient_id: uuid.UUID | None = None,
    origin: RequestOrigin = NOWHERE,
    detail: str | None = None,
    recorded_at: datetime | None = None,
) -> dict[str, object]:
    """One audit row as column values for ``append_audit``, cut to the columns' lengths."""
    return {
        "id": uuid.uuid4(),
        "recorded_at": recorded_at or utcnow(),
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_name": None if actor.name is None else actor.name[:120],
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "patient_id": patient_id,
        "outcome": outcome,
        "ip": origin.ip,
        "user_agent": (origin.user_agent or "")[:300] or None,
        "request_id": origin.request_id,
        "detail": (detail or "")[:500] or None,
    }


def _rows(caller: Caller, outcome: AuditOutcome, failure: str | None) -> list[dict[str, object]]:
    """The audit rows of a use case's notes."""
    principal = caller.principal
    actor = Actor(principal.kind, str(principal.id), principal.name)
    origin = RequestOrigin(caller.ip, caller.user_agent, caller.request_id)
    now = utcnow()
    return [
        audit_row(
            actor,
            note.action,
            note.entity_type,
            note.entity_id,
            outcome,
            patient_id=note.patient_id,
            origin=origin,
            detail=failure or note.detail,
            recorded_at=now,
        )
        for note in caller.notes
    ]


_AUDIT = table_of(AuditEvent)
_CHECKPOINT = table_of(AuditCheckpoint)

# PostgreSQL: ``audit_chain_tail()`` (migration 0001) takes the chain's transaction lock and
# then reads the tail, in one round trip. The lock makes appends from every process take
# turns, from the tail read to their commit, so the chain never forks (the unique ``seq``
# would refuse a fork anyway). SQLite needs no lock: BEGIN IMMEDIATE has every writer wait.
_PG_TAIL = sa.text("SELECT seq, hash FROM audit_chain_tail()")
_newest_row = sa.select(_AUDIT.c.seq, _AUDIT.c.hash).order_by(_AUDIT.c.seq.desc()).limit(1)
_newest_checkpoint = (
    sa.select(_CHECKPOINT.c.seq, _CHECKPOINT.c.hash).order_by(_CHECKPOINT.c.seq.desc()).limit(1)
)
_SQLITE_TAIL = (
    sa.union_all(_newest_row.subquery().select(), _newest_checkpoint.subquery().select())
    .order_by(sa.literal_column("seq").desc())
    .limit(1)
)


async def chain_tail(connection: AsyncConnection) -> Link:
    """The chain's newest link, locked until the transaction ends (PostgreSQL)."""
    query = _PG_TAIL if connection.dialect.name == "postgresql" else _SQLITE_TAIL
    row = (await connection.execute(query)).first()
    return START if row is None or row.seq is None else Link(row.seq, row.hash)


async def append_audit(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    """Chain ``rows`` after the newest audit row and write them with one INSERT, in the
    session's transaction. Call it last in a transaction: pending changes are flushed first,
    so that the chain's lock is never held while waiting for a row another appender holds."""
    if rows:
        connection = await core_connection(session)
        chained(rows, await chain_tail(connection))
        await connection.run_sync(write_rows, _AUDIT, rows)


@asynccontextmanager
async def audited_unit_of_work(db: Database, caller: Caller) -> AsyncIterator[AsyncSession]:
    caller.notes.clear()
    try:
        async with db.unit_of_work() as session:
            yield session
            await append_audit(session, _rows(caller, AuditOutcome.SUCCESS, None))
    except TelehealthError as exc:
        if caller.notes:
            async with db.unit_of_work() as session:
                await append_audit(session, _rows(caller, _outcome_of(exc), exc.detail))
        raise


def _outcome_of(exc: TelehealthError) -> AuditOutcome:
    refused = isinstance(exc, PermissionDenied | NotFound | NotAuthenticated)
    return AuditOutcome.DENIED if refused else AuditOutcome.FAILED


READ_ONLY = "read_only_connection"  # in a read session's info: its connection


@asynccontextmanager
async def audited_read(db: Database, caller: Caller) -> AsyncIterator[AsyncSession]:
    """A use case that changes nothing (a FHIR read or search): its session runs on a
    ``Database.read_only()`` connection, with no BEGIN/COMMIT round trips on PostgreSQL, and
    its notes are written by one INSERT on that connection, whatever the outcome."""
    caller.notes.clear()
    refusal: TelehealthError | None = None
    async with db.read_only() as connection:
        session = AsyncSession(bind=connection, info={READ_ONLY: connection})
        try:
            yield session
        except TelehealthError as exc:
            refusal = exc  # raised once the audit row is committed (SQLite: a transaction)
            await _insert_notes(connection, caller, _outcome_of(exc), exc.detail)
        else:
            await _insert_notes(connection, caller, AuditOutcome.SUCCESS, None)
        finally:
            await session.close()
    if refusal is not None:
        raise refusal


_INSERT_NOTES = Prepared(sa.insert(AuditEvent))


async def _insert_notes(
    connection: AsyncConnection, caller: Caller, outcome: AuditOutcome, failure: str | None
) -> None:
    rows = _rows(caller, outcome, failure)
    if not rows:
        return
    if connection.dialect.name != "postgresql":  # SQLite: already in a transaction
        chained(rows, await chain_tail(connection))
        await _INSERT_NOTES.execute_many(connection, rows)
        return
    # The read connection is in autocommit; the lock must last until the rows are committed.
    driver: Any = (await connection.get_raw_connection()).driver_connection
    async with driver.transaction():
        row = await driver.fetchrow(str(_PG_TAIL))
        chained(rows, START if row["seq"] is None else Link(row["seq"], row["hash"]))
        await _INSERT_NOTES.execute_many(connection, rows)


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _plausible(moment: datetime) -> bool:
    try:
        return EARLIEST <= as_utc(moment) <= LATEST
    except OverflowError:  # year 1 or 9999 shifted past the calendar's end
        return False


@dataclass(frozen=True)
class AuditQuery:
    actor_id: str | None = None
    patient_id: uuid.UUID | None = None
    entity_type: str | None = None
    action: str | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


async def search_audit(
    session: AsyncSession, caller: Caller, query: AuditQuery
) -> Sequence[AuditEvent]:
    check_account_admin(caller.principal)
    for field, moment in (("since", query.since), ("until", query.until)):
        if moment is not None and not _plausible(moment):
            raise InvalidInput.for_field(
                field, f"must lie between {EARLIEST.year} and {LATEST.year}"
            )
    statement = select(AuditEvent)
    if query.actor_id:
        statement = statement.where(AuditEvent.actor_id == query.actor_id)
    if query.patient_id:
        statement = statement.where(AuditEvent.patient_id == query.patient_id)
    if query.entity_type:
        statement = statement.where(AuditEvent.entity_type == query.entity_type)
    if query.action:
        statement = statement.where(AuditEvent.action == query.action)
    if query.outcome:
        statement = statement.where(AuditEvent.outcome == query.outcome)
    if query.since:
        statement = statement.where(col(AuditEvent.recorded_at) >= query.since)
    if query.until:
        statement = statement.where(col(AuditEvent.recorded_at) < query.until)
    statement = statement.order_by(col(AuditEvent.recorded_at).desc(), col(AuditEvent.id))
    result = await session.exec(statement.offset(query.offset).limit(query.limit))
    return result.all()
