"""Many rows in one statement (``db.insert_rows``; on PostgreSQL one ``unnest`` INSERT): the rows
read back exactly as the ORM would have stored them, and bad values are refused whole."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import col, select

from telehealth.db import Database, insert_rows, table_of
from telehealth.errors import InvalidInput
from telehealth.timers.models import Timer, TimerState


def _row(subject: uuid.UUID, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "kind": "appointment.reminder",
        "subject_id": subject,
        "due_at": datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
        "state": TimerState.PENDING,
        "attempts": 0,
        "lease_until": None,
        "claimed_by": None,
        "last_error": None,
        "payload": {},
        "created_at": datetime(2026, 11, 25, 2, 0, 0, 123000, tzinfo=UTC),
        "fired_at": None,
    }
    row.update(changes)
    return row


async def test_rows_read_back_as_written(db: Database) -> None:
    subject = uuid.uuid4()
    hanoi = timezone(timedelta(hours=7))
    rows = [
        _row(subject),
        _row(
            subject,
            kind="room.open",
            # A local time is stored as the same instant in UTC.
            due_at=datetime(2026, 12, 1, 8, 30, tzinfo=hanoi),
            state=TimerState.DONE,
            attempts=3,
            claimed_by="worker-1",
            last_error="Lỗi: không gửi được tin nhắn",
            payload={"lead_min": 15, "người nhận": ["Nguyễn Văn An"], "ok": True},
            fired_at=datetime(2026, 12, 1, 1, 31, tzinfo=UTC),
        ),
        _row(subject, payload={"nested": {"list": [1, 2.5, None]}}),
    ]
    async with db.unit_of_work() as session:
        await insert_rows(session, table_of(Timer), rows)
    async with db.unit_of_work() as session:
        stored = {
            t.id: t
            for t in (await session.exec(select(Timer).where(col(Timer.subject_id) == subject)))
        }
    assert set(stored) == {row["id"] for row in rows}
    for row in rows:
        timer = stored[row["id"]]  # type: ignore[index]
        for name, value in row.items():
            got = getattr(timer, name)
            if isinstance(value, datetime):
                assert got == value and got.utcoffset() == timedelta(0), name
            else:
                assert got == value, name


@pytest.mark.postgres_only
@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite does not check lengths
async def test_a_value_that_does_not_fit_refuses_every_row(db: Database) -> None:
    subject = uuid.uuid4()
    rows = [_row(subject), _row(subject, claimed_by="x" * 65)]  # the column holds 64
    with pytest.raises(InvalidInput):
        async with db.unit_of_work() as session:
            await insert_rows(session, table_of(Timer), rows)
    async with db.unit_of_work() as session:
        left = (await session.exec(select(Timer).where(col(Timer.subject_id) == subject))).all()
    assert left == []


async def test_rows_already_stored_are_left_out_when_asked(db: Database) -> None:
    subject = uuid.uuid4()
    first = [_row(subject), _row(subject)]
    async with db.unit_of_work() as session:
        await insert_rows(session, table_of(Timer), first)
    again = [{**first[0], "kind": "changed"}, _row(subject, kind="new")]
    async with db.unit_of_work() as session:
        await insert_rows(session, table_of(Timer), again, unless_stored=("id",))
    async with db.unit_of_work() as session:
        kinds = sorted(
            (await session.exec(select(Timer.kind).where(col(Timer.subject_id) == subject))).all()
        )
    assert kinds == ["appointment.reminder", "appointment.reminder", "new"]
