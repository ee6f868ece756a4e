"""Columns every table shares: a UUID key and UTC timestamps."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from telehealth.db import UTCDateTime
from telehealth.timeutil import utcnow


def enum_type(enum: type[StrEnum], length: int = 16) -> sa.Enum:
    """Store an enum's values as plain strings (no native PostgreSQL enum to migrate)."""
    return sa.Enum(
        enum,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Entity(SQLModel):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
