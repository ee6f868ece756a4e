"""The unit of work's journal: heard by the database's listeners when it commits, never when it
rolls back; and the domain imports nothing of FHIR to write in it."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from telehealth.db import Database
from telehealth.errors import Conflict
from telehealth.journal import Journal, Listeners, journal
from telehealth.settings import Settings

DOMAIN = (
    "telehealth.consults.booking",
    "telehealth.consults.service",
    "telehealth.consults.slot_taking",
    "telehealth.consults.conclusion",
    "telehealth.rtc.service",
    "telehealth.availability.service",
    "telehealth.directory.service",
    "telehealth.consults.consents",
    "telehealth.notifications.service",
    "telehealth.db",
)


async def _change_then_refuse(db: Database, request: uuid.UUID) -> None:
    async with db.unit_of_work() as session:
        journal(session).changed("ConsultRequest", request, "request.cancel")
        raise Conflict("changed my mind")


async def test_listeners_hear_a_committed_journal_only(settings: Settings) -> None:
    request = uuid.uuid4()
    before: list[int] = []
    after: list[Journal] = []

    def count_before(session: Session) -> None:
        # Inside the transaction: what it writes commits with the change.
        before.append(session.execute(sa.select(sa.literal(1))).scalar_one())

    async def hear(told: Journal) -> None:
        after.append(told)

    db = Database(settings, Listeners(before_commit=[count_before], after_commit=[hear]))
    try:
        async with db.unit_of_work() as session:
            journal(session).changed("ConsultRequest", request, "request.accept")
            journal(session).changed("ConsultRequest", request, "appointment.booked")
        assert before == [1]
        assert [c.what for c in after[0].changes] == ["appointment.booked"]  # the last said
        with pytest.raises(Conflict):
            await _change_then_refuse(db, request)
        assert len(after) == 1  # a rolled-back journal is dropped unheard
    finally:
        await db.dispose()


def test_the_domain_and_the_core_load_nothing_of_fhir() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {DOMAIN!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('telehealth.fhir')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
