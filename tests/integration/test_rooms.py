"""Rooms through the HTTP API: open_room_for, invitations, join tokens with ICE servers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import delete, update
from sqlmodel import col, func, select

from telehealth.auth.models import Role
from telehealth.db import Database
from telehealth.pubsub import asyncpg_dsn
from telehealth.reactions import open_database
from telehealth.rtc.closures import LISTENER_NAME, RoomClosures
from telehealth.rtc.models import ParticipantRole, Room, RoomParticipant, RoomState
from telehealth.rtc.service import ParticipantSpec, close_room, open_room_for
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.handler_support import booked
from tests.helpers import assert_problem, login
from tests.integration.test_web_session import page_login
from tests.rtc_support import account_like, make_room, user_id

TURN_SECRET = "coturn-shared-secret"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key="test-signing-key-" + "x" * 32,
        stun_urls=["stun:127.0.0.1:3478"],
        turn_urls=["turn:127.0.0.1:3478?transport=udp"],
        turn_secret=TURN_SECRET,  # credentials live 6 hours, the default
    )


async def test_open_room_for_is_idempotent_and_follows_the_booking(
    db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    later = utcnow() + timedelta(days=1)
    interpreter = await user_id(db, "bs.nhi")
    async with db.unit_of_work() as session:
        again = await open_room_for(
            session,
            made.appointment_id,
            [
                ParticipantSpec(made.requester, ParticipantRole.REQUESTER),
                ParticipantSpec(interpreter, ParticipantRole.SPECIALIST),
            ],
            later,
            later + timedelta(minutes=20),
            settings=settings,
        )
    assert again.id == made.room_id
    assert again.state == RoomState.SCHEDULED
    assert again.opens_at == later - timedelta(seconds=settings.room_open_before_s)
    async with db.unit_of_work() as session:
        rooms = (await session.exec(select(func.count()).select_from(Room))).one()
        people = (
            await session.exec(
                select(RoomParticipant.user_id).where(col(RoomParticipant.room_id) == made.room_id)
            )
        ).all()
    assert rooms == 1
    assert sorted(people) == sorted([made.requester, made.specialist, interpreter])


async def test_room_opens_once_its_window_begins(db: Database, settings: Settings) -> None:
    made = await make_room(db, settings, starts_in=timedelta(hours=2))
    async with db.unit_of_work() as session:
        room = await session.get(Room, made.room_id)
        assert room is not None and room.state == RoomState.SCHEDULED
        soon = room.starts_at - timedelta(minutes=1)
        reopened = await open_room_for(
            session, made.appointment_id, [], room.starts_at, room.ends_at, now=soon
        )
    assert reopened.state == RoomState.OPEN


async def test_participant_gets_join_token_with_time_limited_turn_credentials(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    response = await client.post(
        f"/api/rooms/{made.room_id}/join", headers=await login(client, "bs.xa1")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token"] and body["websocket_path"] == f"/ws/rooms/{made.room_id}"
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    expiry, participant = turn["username"].split(":")
    assert participant == str(made.requester)
    expected = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(expected).decode()
    # No longer than the room's window (issue 13, hole 2), however long the setting allows.
    async with db.unit_of_work() as session:
        room = await session.get(Room, made.room_id)
        assert room is not None
    assert time.time() < int(expiry) <= room.closes_at.timestamp()
    # The room opened because a participant came within its window.
    async with db.unit_of_work() as session:
        room = await session.get(Room, made.room_id)
        assert room is not None and room.state == RoomState.OPEN


async def test_non_participant_gets_no_token_and_cannot_see_the_room(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    outsider = await login(client, "bs.xa2")  # another station: the consult is not theirs
    assert_problem(await client.post(f"/api/rooms/{made.room_id}/join", headers=outsider), 404)
    assert_problem(await client.get(f"/api/rooms/{made.room_id}", headers=outsider), 404)
    # The hospital's coordinator sees the room, but is not one of the people in it.
    body = assert_problem(
        await client.post(
            f"/api/rooms/{made.room_id}/join", headers=await login(client, "dieuphoi")
        ),
        403,
    )
    assert "not a participant" in str(body["detail"])
    own = await client.get(f"/api/rooms/{made.room_id}", headers=await login(client, "bs.tim"))
    assert own.status_code == 200 and len(own.json()["participants"]) == 2


# Who may read a room, invite into it and join it (issue 13, hole 1): exactly who may see its
# consult, bs.xa1's request to bs.tim's hospital. The invitation asks for bs.san, a colleague
# at that hospital, so that only the inviter decides the answer.
ROOM_ACCESS = {
    "coordinator, consult's hospital": ("dieuphoi", (200, 201, 403)),
    "coordinator, other hospital": ("dieuphoi.nhi", (404, 404, 404)),
    "specialist, consult's hospital": ("bs.tim", (200, 403, 201)),
    "specialist, other hospital": ("bs.nhi", (404, 404, 404)),
    "requester, requesting station": ("bs.xa1", (200, 403, 201)),
    "requester, other station": ("bs.xa2", (404, 404, 404)),
}


@pytest.mark.parametrize(("username", "expected"), ROOM_ACCESS.values(), ids=ROOM_ACCESS.keys())
async def test_room_access_follows_the_consult(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    username: str,
    expected: tuple[int, int, int],
) -> None:
    made = await make_room(db, settings)
    await account_like(db, "dieuphoi.nhi", Role.COORDINATOR, like="bs.nhi")
    colleague = await user_id(db, "bs.san")
    headers = await login(client, username)
    path = f"/api/rooms/{made.room_id}"
    read = await client.get(path, headers=headers)
    invite = await client.post(
        f"{path}/participants", json={"user_id": str(colleague)}, headers=headers
    )
    join = await client.post(f"{path}/join", headers=headers)
    assert (read.status_code, invite.status_code, join.status_code) == expected, (
        read.text,
        invite.text,
        join.text,
    )


async def test_a_coordinator_invites_only_people_who_may_see_the_consult(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    coordinator = await login(client, "dieuphoi")
    path = f"/api/rooms/{made.room_id}"
    # A commune doctor of another station, a specialist of another hospital.
    for outsider in ("bs.xa2", "bs.nhi"):
        refused = await client.post(
            f"{path}/participants",
            json={"user_id": str(await user_id(db, outsider))},
            headers=coordinator,
        )
        assert_problem(refused, 422, field="user_id")
        assert_problem(
            await client.post(f"{path}/join", headers=await login(client, outsider)), 404
        )
    people = (await client.get(path, headers=coordinator)).json()["participants"]
    assert {p["user_id"] for p in people} == {str(made.requester), str(made.specialist)}


async def test_closed_and_not_yet_open_rooms_refuse_tokens(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    early = await make_room(db, settings, starts_in=timedelta(hours=3))
    headers = await login(client, "bs.xa1")
    body = assert_problem(
        await client.post(f"/api/rooms/{early.room_id}/join", headers=headers), 409
    )
    assert "opens at" in str(body["detail"])
    ended = await make_room(db, settings)
    async with db.unit_of_work() as session:
        assert await close_room(session, ended.room_id)
        assert not await close_room(session, ended.room_id)
    body = assert_problem(
        await client.post(f"/api/rooms/{ended.room_id}/join", headers=headers), 409
    )
    assert "closed" in str(body["detail"])


async def test_only_a_coordinator_invites_a_second_specialist(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    second = await user_id(db, "bs.san")  # a colleague at the consult's hospital
    path = f"/api/rooms/{made.room_id}/participants"
    refused = await client.post(
        path, json={"user_id": str(second)}, headers=await login(client, "bs.tim")
    )
    assert_problem(refused, 403)
    # Another specialty: until invited, the room does not exist for bs.san.
    assert_problem(
        await client.post(f"/api/rooms/{made.room_id}/join", headers=await login(client, "bs.san")),
        404,
    )
    coordinator = await login(client, "dieuphoi")
    invited = await client.post(path, json={"user_id": str(second)}, headers=coordinator)
    assert invited.status_code == 201, invited.text
    roles = {p["user_id"]: p["role"] for p in invited.json()}
    assert roles[str(second)] == "invited"
    joined = await client.post(
        f"/api/rooms/{made.room_id}/join", headers=await login(client, "bs.san")
    )
    assert joined.status_code == 201
    bad = await client.post(path, json={"user_id": str(uuid.uuid4())}, headers=coordinator)
    assert_problem(bad, 422, field="user_id")


@pytest.mark.parametrize("ending", ["cancel", "no-show", "complete"])
async def test_a_room_closes_when_its_appointment_ends(
    client: httpx.AsyncClient, db: Database, ending: str
) -> None:
    made = await booked(client)
    appointment_id = made["appointment"]["id"]
    async with db.unit_of_work() as session:
        room = (
            await session.exec(
                select(Room).where(col(Room.appointment_id) == uuid.UUID(appointment_id))
            )
        ).one()
    ended = await client.post(
        f"/api/appointments/{appointment_id}/{ending}",
        json={"reason": "Bệnh nhân chuyển viện"},
        headers=made["cardio"],
    )
    assert ended.status_code == 200, ended.text
    async with db.unit_of_work() as session:
        closed = await session.get(Room, room.id)
        assert closed is not None and closed.state == RoomState.ENDED and closed.ended_at
    body = assert_problem(
        await client.post(f"/api/rooms/{room.id}/join", headers=made["doctor"]), 409
    )
    assert "closed" in str(body["detail"])


async def test_a_closing_missed_while_the_listener_was_away_still_ends_connections(
    backend: str, private_database_url: str, settings: Settings
) -> None:
    """A room ended while a process's listener was down (its notice lost) is found when the
    listener comes back, and that process's connections in it are let go."""
    if backend != "postgresql":
        pytest.skip("one process on SQLite: it hears its own closings, nothing is missed")
    # A database of its own: the listener connections to it are counted below.
    settings = settings.model_copy(update={"database_url": private_database_url})
    db = open_database(settings)
    try:
        await _closing_missed_while_away(db, settings)
    finally:
        await db.dispose()


async def _closing_missed_while_away(db: Database, settings: Settings) -> None:
    made = await make_room(db, settings)
    closures = RoomClosures(settings, db)
    await closures.start()
    dsn = asyncpg_dsn(settings.resolved_database_url)
    admin = await asyncpg.connect(dsn)
    try:
        with closures.watch(made.room_id) as closed:
            # Ended without a notice, as if it had been sent while nobody listened.
            async with db.unit_of_work() as session:
                await session.exec(
                    update(Room)
                    .where(col(Room.id) == made.room_id)
                    .values(state=RoomState.ENDED, ended_at=utcnow())
                )
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                LISTENER_NAME,
            )
            assert killed == 1
            await asyncio.wait_for(closed.wait(), timeout=15)
    finally:
        await admin.close()
        await closures.stop()


async def test_an_appointment_that_is_over_gets_no_room_from_the_desk(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """An appointment cancelled before it had a room (booked before rooms were made at
    booking) must not get one, nor a join token, when a participant opens it."""
    made = await make_room(db, settings)
    async with db.unit_of_work() as session:
        await session.exec(
            delete(RoomParticipant).where(col(RoomParticipant.room_id) == made.room_id)
        )
        await session.exec(delete(Room).where(col(Room.id) == made.room_id))
    cancelled = await client.post(
        f"/api/appointments/{made.appointment_id}/cancel",
        json={"reason": "Bệnh nhân chuyển viện"},
        headers=await login(client, "dieuphoi"),
    )
    assert cancelled.status_code == 200, cancelled.text
    await page_login(client, "bs.xa1")
    response = await client.get(f"/appointments/{made.appointment_id}/join")
    assert response.status_code == 409, response.headers
    assert "#token=" not in response.headers.get("location", "")
    async with db.unit_of_work() as session:
        rooms = await session.exec(
            select(Room).where(col(Room.appointment_id) == made.appointment_id)
        )
        assert rooms.first() is None
