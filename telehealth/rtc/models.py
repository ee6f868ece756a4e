"""Rooms of video sessions, who may join them, what happened in them, and their recordings.

A room belongs to one appointment (``appointment_id``, a foreign key since migration 0007)
and keeps its own participant list, so that a coordinator can invite a second specialist or
an interpreter without touching the booking.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from telehealth.db import PortableJSON, UTCDateTime
from telehealth.models import Entity, enum_type, new_id
from telehealth.timeutil import utcnow


class RoomState(StrEnum):
    SCHEDULED = "scheduled"  # booked, not yet joinable
    OPEN = "open"  # joinable, nobody has joined yet
    ACTIVE = "active"  # someone joined
    ENDED = "ended"  # closed for good


class ParticipantRole(StrEnum):
    REQUESTER = "requester"
    SPECIALIST = "specialist"
    INVITED = "invited"  # second specialist or interpreter added by a coordinator


class SessionEventKind(StrEnum):
    JOIN = "join"
    LEAVE = "leave"
    RECONNECT = "reconnect"
    MEDIA_MODE = "media_mode"
    MUTE = "mute"
    CONSENT = "consent"
    RECORDING_START = "recording_start"
    RECORDING_STOP = "recording_stop"
    QUALITY = "quality"
    PRECALL = "precall"


class Room(Entity, table=True):
    __tablename__ = "room"

    appointment_id: uuid.UUID = Field(
        unique=True, foreign_key="appointment.id", description="the booked consult"
    )
    state: RoomState = Field(default=RoomState.SCHEDULED, sa_type=enum_type(RoomState, 12))
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    opens_at: datetime = Field(sa_type=UTCDateTime, description="joinable from")
    closes_at: datetime = Field(sa_type=UTCDateTime, description="end plus the grace period")
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RoomParticipant(SQLModel, table=True):
    """One person allowed in a room; ``connection_id`` is set while they are connected."""

    __tablename__ = "room_participant"
    __table_args__ = (UniqueConstraint("room_id", "user_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    room_id: uuid.UUID = Field(foreign_key="room.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    role: ParticipantRole = Field(sa_type=enum_type(ParticipantRole, 12))
    added_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    consented_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    connection_id: str | None = Field(default=None, max_length=32)
    connected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SessionEvent(SQLModel, table=True):
    """Something that happened in a room: the encounter's real times come from these."""

    __tablename__ = "session_event"
    __table_args__ = (Index("ix_session_event_room", "room_id", "at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    room_id: uuid.UUID = Field(foreign_key="room.id")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    kind: SessionEventKind = Field(sa_type=enum_type(SessionEventKind, 20))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=PortableJSON)


class Recording(SQLModel, table=True):
    """One participant's recorded media, kept under the data directory (``path`` relative)."""

    __tablename__ = "recording"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    room_id: uuid.UUID = Field(foreign_key="room.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    path: str = Field(max_length=300)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    size_bytes: int | None = None


class RelayLease(SQLModel, table=True):
    """Which service process hosts a room's media relay, and until when.

    Taken atomically (one conditional upsert) by the first process asked to relay in the room,
    renewed while it holds relay legs there, deleted when it holds none; a process that dies
    stops renewing, and the next relay offer after ``expires_at`` moves the relay elsewhere."""

    __tablename__ = "relay_lease"

    room_id: uuid.UUID = Field(primary_key=True, foreign_key="room.id")
    owner: str = Field(max_length=64, description="host:pid:tag of the hosting process")
    expires_at: datetime = Field(sa_type=UTCDateTime)
