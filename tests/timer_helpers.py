"""Helpers for the timer and notification tests: write timers, count the test handler's rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import col, func, select

from telehealth.auth.models import AuditEvent
from telehealth.db import Database
from telehealth.timer_test_kinds import TEST_EFFECT_ACTION
from telehealth.timers.models import Timer
from telehealth.timers.service import schedule


async def add_timers(
    db: Database, kind: str, due_at: datetime, count: int = 1, payload: dict[str, Any] | None = None
) -> list[uuid.UUID]:
    """Write ``count`` timers (one subject each) and return their subjects."""
    subjects = [uuid.uuid4() for _ in range(count)]
    async with db.unit_of_work() as session:
        for subject in subjects:
            schedule(session, kind, subject, due_at, payload)
    return subjects


async def effects(db: Database, subject: uuid.UUID | None = None) -> int:
    """Rows written by the ``test.count`` handler (for one subject, or in all)."""
    statement = (
        select(func.count())
        .select_from(AuditEvent)
        .where(col(AuditEvent.action) == TEST_EFFECT_ACTION)
    )
    if subject is not None:
        statement = statement.where(col(AuditEvent.entity_id) == str(subject))
    async with db.unit_of_work() as session:
        return int((await session.exec(statement)).one())


async def timer_of(db: Database, subject: uuid.UUID) -> Timer:
    async with db.unit_of_work() as session:
        return (await session.exec(select(Timer).where(Timer.subject_id == subject))).one()
