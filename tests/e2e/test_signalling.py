"""Signalling over the real WebSocket with real aiortc peers: media flows, refusals are clear."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from telehealth.db import Database
from telehealth.rtc.credentials import JoinClaims, issue_join_token
from telehealth.rtc.models import Room, RoomState, SessionEvent, SessionEventKind
from telehealth.rtc.presence import session_times
from telehealth.rtc.service import close_room
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.conftest import RunningServer
from tests.helpers import assert_problem, login
from tests.rtc_client import Participant, SignallingClient
from tests.rtc_support import ConsultRoom, join_token, loopback_ice, make_room, user_id


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


def signalling_to(server: RunningServer, room_id: uuid.UUID, token: str) -> SignallingClient:
    """A client of the room's WebSocket that sends ``token`` in its first message."""
    return SignallingClient(f"{server.url.replace('http', 'ws', 1)}/ws/rooms/{room_id}", token)


async def test_two_peers_exchange_media_leave_and_reconnect(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    a = Participant(server.url, str(made.room_id), await join_token(client, made.room_id, "bs.xa1"))
    b = Participant(server.url, str(made.room_id), await join_token(client, made.room_id, "bs.tim"))
    try:
        await a.join()
        welcome = await b.join()
        assert {p["id"]: p["connected"] for p in welcome["participants"]} == {
            str(made.requester): True,
            str(made.specialist): True,
        }
        assert await a.wait_frames(str(made.specialist), 10) >= 10
        assert await b.wait_frames(str(made.requester), 10) >= 10

        # The specialist's link drops and comes back: a new connection with the token the
        # service handed out, while the requester stays connected and only answers.
        again = Participant(server.url, str(made.room_id), welcome["token"])
        rejoined = await again.join()
        assert rejoined["reconnect"] is True
        assert await b.signalling.closed() == 4000
        await b.drop()
        assert await again.wait_frames(str(made.requester), 10) >= 10
        assert await a.wait_frames(str(made.specialist), 10 + a.frames[str(made.specialist)])
        assert a.signalling.close_code is None

        await again.leave()
        left = await a.signalling.expect("peer_left")
        assert left["from"] == str(made.specialist)
    finally:
        await a.leave()
        await b.drop()

    async with db.unit_of_work() as session:
        kinds = (
            await session.exec(
                select(SessionEvent.kind)
                .where(col(SessionEvent.room_id) == made.room_id)
                .where(col(SessionEvent.user_id) == made.specialist)
                .order_by(col(SessionEvent.at))
            )
        ).all()
        times = await session_times(session, made.appointment_id)
    assert kinds[0] == SessionEventKind.JOIN
    assert SessionEventKind.RECONNECT in kinds
    assert kinds[-1] == SessionEventKind.LEAVE
    assert times is not None and times.started_at is not None and times.ended_at is not None
    assert times.joined == {made.requester, made.specialist}


async def _refused(signalling: SignallingClient) -> tuple[dict[str, object], int | None]:
    await signalling.connect()
    error = await signalling.expect("error")
    return error, await signalling.closed()


async def test_join_refusals_say_why(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    other = await make_room(db, settings)
    outsider = await user_id(db, "bs.xa2")
    now = utcnow()
    expired_settings = settings.model_copy(update={"join_token_ttl_s": 10})
    expired = issue_join_token(
        expired_settings,
        JoinClaims(made.room_id, made.requester, "requester", "x"),
        now - timedelta(minutes=1),
    )
    cases = {
        "expired": expired,
        "wrong_room": await join_token(client, other.room_id, "bs.xa1"),
        "not_participant": issue_join_token(
            settings, JoinClaims(made.room_id, outsider, "requester", "x"), now
        ),
        "invalid_token": "not-a-token",
    }
    for reason, token in cases.items():
        error, code = await _refused(signalling_to(server, made.room_id, token))
        assert error["reason"] == reason, error
        assert isinstance(error["message"], str) and error["message"]
        assert code in (4401, 4403)

    # The token must come in the first message: one in the URL is not read (it would be
    # logged), and a connection that says something else first is closed.
    token = await join_token(client, made.room_id, "bs.xa1")
    base = f"{server.url.replace('http', 'ws', 1)}/ws/rooms/{made.room_id}"
    in_url = SignallingClient(f"{base}?token={token}")
    await in_url.connect()
    await in_url.send({"type": "mute", "audio": True, "video": False})
    error = await in_url.expect("error")
    assert (error["reason"], await in_url.closed()) == ("auth_required", 4401)

    async with db.unit_of_work() as session:
        await close_room(session, made.room_id)
    error, code = await _refused(signalling_to(server, made.room_id, token))
    assert (error["reason"], code) == ("room_closed", 4410)


async def test_malformed_and_oversized_messages_are_refused_and_relay_nothing(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    a = signalling_to(server, made.room_id, await join_token(client, made.room_id, "bs.xa1"))
    b = signalling_to(server, made.room_id, await join_token(client, made.room_id, "bs.tim"))
    await a.connect()
    await a.expect("welcome")
    await b.connect()
    await b.expect("welcome")
    await a.expect("peer_joined")
    bad = [
        "not json",
        json.dumps({"type": "offer", "to": str(made.specialist)}),
        json.dumps({"type": "launch_missiles"}),
        json.dumps({"type": "mute", "audio": "loud", "video": False}),
        json.dumps({"type": "offer", "to": str(made.specialist), "sdp": "v=0" + "x" * 70_000}),
    ]
    reasons = []
    for text in bad:
        await b.send_text(text)
        reasons.append((await b.expect("error"))["reason"])
    assert reasons == ["malformed"] * 4 + ["too_large"]
    # The connection is still usable, and nothing bad reached the other side.
    await b.send({"type": "quality", "rtt_ms": 120.5, "loss_pct": 1.5, "bitrate_kbps": 480})
    await b.send({"type": "mute", "audio": True, "video": False})
    relayed = await a.expect("mute")
    assert relayed == {"type": "mute", "audio": True, "video": False, "from": str(made.specialist)}
    async with db.unit_of_work() as session:
        events = (
            await session.exec(
                select(SessionEvent).where(
                    col(SessionEvent.room_id) == made.room_id,
                    col(SessionEvent.user_id) == made.specialist,
                )
            )
        ).all()
    recorded = {e.kind: e.detail for e in events}
    assert recorded[SessionEventKind.QUALITY] == {
        "rtt_ms": 120.5,
        "loss_pct": 1.5,
        "bitrate_kbps": 480.0,
    }
    assert recorded[SessionEventKind.MUTE] == {"audio": True, "video": False}
    await a.close()
    await b.close()


async def test_room_ends_when_the_last_participant_leaves_after_the_booked_end(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings, starts_in=timedelta(minutes=-40))  # ended 10 min ago
    a = signalling_to(server, made.room_id, await join_token(client, made.room_id, "bs.xa1"))
    b = signalling_to(server, made.room_id, await join_token(client, made.room_id, "bs.tim"))
    for signalling in (a, b):
        await signalling.connect()
        await signalling.expect("welcome")
    await a.send({"type": "leave"})
    await a.closed()
    async with db.unit_of_work() as session:
        room = await session.get(Room, made.room_id)
        assert room is not None and room.state == RoomState.ACTIVE  # the specialist is still there
    await b.send({"type": "leave"})
    await b.closed()
    async with db.unit_of_work() as session:
        room = await session.get(Room, made.room_id)
        assert room is not None and room.state == RoomState.ENDED and room.ended_at is not None
    error, code = await _refused(
        signalling_to(server, made.room_id, await _token_of(settings, made))
    )
    assert (error["reason"], code) == ("room_closed", 4410)


async def _token_of(settings: Settings, made: ConsultRoom) -> str:
    claims = JoinClaims(made.room_id, made.requester, "requester", "x")
    return issue_join_token(settings, claims, utcnow())


async def test_cancelling_the_appointment_ends_the_room_and_its_connections(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    token = await join_token(client, made.room_id, "bs.xa1")
    live = signalling_to(server, made.room_id, token)
    await live.connect()
    welcome = await live.expect("welcome")
    checking = SignallingClient(live.ws_url, token, precall=True)  # a pre-call check, too
    await checking.connect()
    await checking.expect("welcome")
    cancelled = await client.post(
        f"/api/appointments/{made.appointment_id}/cancel",
        json={"reason": "Bệnh nhân chuyển viện"},
        headers=await login(client, "dieuphoi"),
    )
    assert cancelled.status_code == 200, cancelled.text
    # The connections that were in the room are told, and closed.
    for connection in (live, checking):
        await connection.expect("room_closed", within_s=10)
        assert await connection.closed() == 4410
    # Tokens handed out before (at joining, and the fresh one of the welcome) no longer work,
    # and no new one is issued.
    for old in (token, welcome["token"]):
        error, code = await _refused(signalling_to(server, made.room_id, old))
        assert (error["reason"], code) == ("room_closed", 4410)
    refused = await client.post(
        f"/api/rooms/{made.room_id}/join", headers=await login(client, "bs.xa1")
    )
    assert_problem(refused, 409)
