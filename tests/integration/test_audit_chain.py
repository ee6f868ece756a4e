"""The audit chain under concurrent writers: every audited transaction, from many connections
of several engines (as several processes would), extends one linear chain, never a fork; and
the rows written before the chain existed are chained by its migration."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import text

from telehealth.auth.audit import audited_read, audited_unit_of_work
from telehealth.auth.audit_keeping import verify_chain
from telehealth.auth.models import AuditEvent, Role
from telehealth.auth.principal import Caller, Principal
from telehealth.db import Database, UTCDateTime, table_of
from telehealth.migrate import upgrade
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.e2e.test_cli import empty_database_url

__all__ = ["empty_database_url"]  # the fixture: a database with nothing in it

ENGINES = 2
WRITERS = 15  # per engine, at once: more than half its pool
ROUNDS = 4


async def one_writer(db: Database, writer: int) -> None:
    """Alternates the two ways audit rows are written: in a use case's own transaction
    (``audited_unit_of_work``, two notes) and on a read connection (``audited_read``)."""
    principal = Principal("user", uuid.uuid4(), f"writer {writer}", Role.REQUESTER)
    for round_ in range(ROUNDS):
        caller = Caller(principal, ip="127.0.0.1", request_id=f"w{writer}-{round_}")
        if round_ % 2:
            async with audited_read(db, caller):
                caller.note("search", "Patient", detail="0 of 0 shown")
        else:
            async with audited_unit_of_work(db, caller):
                caller.note("read", "Patient", uuid.uuid4(), patient_id=uuid.uuid4())
                caller.note("update", "Patient", uuid.uuid4())


async def test_concurrent_writers_make_one_contiguous_chain(settings: Settings) -> None:
    engines = [Database(settings) for _ in range(ENGINES)]
    try:
        await asyncio.gather(
            *(
                one_writer(db, n * WRITERS + i)
                for n, db in enumerate(engines)
                for i in range(WRITERS)
            )
        )
        verification = await verify_chain(engines[0])
        async with engines[0].engine.connect() as connection:
            seqs = (
                await connection.execute(text("SELECT seq FROM audit_event ORDER BY seq"))
            ).all()
    finally:
        for db in engines:
            await db.dispose()
    expected = ENGINES * WRITERS * ROUNDS // 2 * 3  # two notes, then one, per pair of rounds
    assert verification.broken is None, verification.broken
    assert verification.rows == expected
    assert [seq for (seq,) in seqs] == list(range(1, expected + 1))


OLD_ROWS = 5


async def test_migration_chains_the_rows_written_before_it(empty_database_url: str) -> None:
    """Rows of a database at 0015 (no chain yet), out of time order on disk, are chained
    oldest first by 0019, and then verify; the service appends after them."""
    await asyncio.to_thread(upgrade, empty_database_url, "0015")
    db = Database(Settings(database_url=empty_database_url))
    try:
        old = sa.table(  # audit_event as 0015 has it: no chain columns
            "audit_event",
            sa.column("id", sa.Uuid()),
            sa.column("recorded_at", UTCDateTime()),
            *(sa.column(name) for name in ("actor_kind", "action", "entity_type", "outcome")),
        )
        start = utcnow() - timedelta(days=3)
        async with db.engine.begin() as connection:
            await connection.execute(
                old.insert(),
                [
                    {
                        "id": uuid.uuid4(),
                        "recorded_at": start + timedelta(minutes=minute),
                        "actor_kind": "user",
                        "action": "read",
                        "entity_type": "Patient",
                        "outcome": "success",
                    }
                    for minute in (4, 1, 3, 0, 2)
                ],
            )
        await asyncio.to_thread(upgrade, empty_database_url)
        caller = Caller(Principal("user", uuid.uuid4(), "after the migration", Role.ADMINISTRATOR))
        async with audited_unit_of_work(db, caller):
            caller.note("read", "Patient", uuid.uuid4())
        verification = await verify_chain(db)
        chain = table_of(AuditEvent).c
        async with db.engine.connect() as connection:
            times = (
                await connection.execute(sa.select(chain.recorded_at).order_by(chain.seq))
            ).scalars()
            ordered = list(times)
    finally:
        await db.dispose()
    assert verification.broken is None, verification.broken
    assert verification.rows == OLD_ROWS + 1
    assert ordered == sorted(ordered)
