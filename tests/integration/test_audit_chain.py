"""The audit chain under concurrent writers: every audited transaction, from many connections
of several engines (as several processes would), extends one linear chain, never a fork."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from telehealth.auth.audit import audited_read, audited_unit_of_work
from telehealth.auth.audit_keeping import verify_chain
from telehealth.auth.models import Role
from telehealth.auth.principal import Caller, Principal
from telehealth.db import Database
from telehealth.settings import Settings

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
