"""What /api/rooms accepts and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from telehealth.rtc.models import ParticipantRole, RoomState


class ParticipantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    role: ParticipantRole
    consented_at: datetime | None


class RoomRead(BaseModel):
    id: uuid.UUID
    appointment_id: uuid.UUID
    state: RoomState
    starts_at: datetime
    ends_at: datetime
    opens_at: datetime
    closes_at: datetime
    participants: list[ParticipantRead]


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID


class JoinRead(BaseModel):
    room_id: uuid.UUID
    token: str
    expires_in_s: int
    ice_servers: list[dict[str, Any]]
    websocket_path: str
    page_path: str
