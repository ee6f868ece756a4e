"""Timers are rows, written in the same transaction as the change that implies them.

Each process claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) with a lease, runs the
handler registered for the row's ``kind``, and marks it done; a handler that fails is retried
with backoff and, after too many failures, left ``dead`` with its error kept.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from telehealth.db import PortableJSON, UTCDateTime
from telehealth.models import enum_type, new_id
from telehealth.timeutil import utcnow


class TimerState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    DEAD = "dead"


class Timer(SQLModel, table=True):
    __tablename__ = "timer"
    __table_args__ = (Index("ix_timer_due", "state", "due_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(max_length=40, description="handler name, e.g. appointment.reminder")
    subject_id: uuid.UUID = Field(index=True, description="the row the timer is about")
    due_at: datetime = Field(sa_type=UTCDateTime)
    state: TimerState = Field(default=TimerState.PENDING, sa_type=enum_type(TimerState, 12))
    attempts: int = 0
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=2000)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=PortableJSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    fired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
