"""Shared by the video-session tests: a room for a demo consult, join tokens, loopback ICE."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from telehealth.auth.models import UserAccount
from telehealth.db import Database
from telehealth.rtc.models import ParticipantRole
from telehealth.rtc.service import ParticipantSpec, open_room_for
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.helpers import login


def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice skips loopback when listing host addresses; on this test machine we want it."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def user_id(db: Database, username: str) -> uuid.UUID:
    async with db.unit_of_work() as session:
        account = (
            await session.exec(select(UserAccount).where(col(UserAccount.username) == username))
        ).one()
        return account.id


@dataclass
class ConsultRoom:
    room_id: uuid.UUID
    appointment_id: uuid.UUID
    requester: uuid.UUID
    specialist: uuid.UUID


async def make_room(
    db: Database, settings: Settings, *, starts_in: timedelta = timedelta(minutes=5)
) -> ConsultRoom:
    """A room for bs.xa1 (requester) and bs.tim (specialist), as booking will create it."""
    requester, specialist = await user_id(db, "bs.xa1"), await user_id(db, "bs.tim")
    appointment_id = uuid.uuid4()
    starts = utcnow() + starts_in
    async with db.unit_of_work() as session:
        room = await open_room_for(
            session,
            appointment_id,
            [
                ParticipantSpec(requester, ParticipantRole.REQUESTER),
                ParticipantSpec(specialist, ParticipantRole.SPECIALIST),
            ],
            starts,
            starts + timedelta(minutes=30),
            settings=settings,
        )
    return ConsultRoom(room.id, appointment_id, requester, specialist)


async def join_token(client: httpx.AsyncClient, room_id: uuid.UUID, username: str) -> str:
    response = await client.post(
        f"/api/rooms/{room_id}/join", headers=await login(client, username)
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token
