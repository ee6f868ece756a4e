"""/api/rooms (room details, invitations, join tokens), the signalling WebSocket and the
consult-room page. The WebSocket and the page authenticate with the join token alone."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

from litestar import Controller, WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, JSONBody
from litestar.response import File

from telehealth.consults import rooms
from telehealth.consults.rooms import patient_of_room
from telehealth.http.dependencies import (
    CallerDep,
    ChannelsDep,
    DatabaseDep,
    SessionDep,
    SettingsDep,
)
from telehealth.rtc.models import Room, RoomParticipant
from telehealth.rtc.schemas import InviteCreate, JoinRead, ParticipantRead, RoomRead
from telehealth.rtc.signalling import RoomConnection, Transport

WEB = Path(__file__).resolve().parent.parent / "web"
PAGE = WEB / "templates" / "room.html"
SCRIPT = WEB / "static" / "room.js"
STYLE = WEB / "static" / "room.css"


def _room_read(room: Room, people: list[RoomParticipant]) -> RoomRead:
    return RoomRead(
        id=room.id,
        appointment_id=room.appointment_id,
        state=room.state,
        starts_at=room.starts_at,
        ends_at=room.ends_at,
        opens_at=room.opens_at,
        closes_at=room.closes_at,
        participants=[ParticipantRead.model_validate(p) for p in people],
    )


class RoomController(Controller):
    path = "/api/rooms"
    tags = ["video"]

    @get("/{room_id:uuid}")
    async def read(
        self, room_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> RoomRead:
        return _room_read(*await rooms.room_for_caller(session, caller, room_id))

    @post("/{room_id:uuid}/participants")
    async def invite(
        self,
        room_id: FromPath[uuid.UUID],
        data: JSONBody[InviteCreate],
        session: SessionDep,
        caller: CallerDep,
    ) -> list[ParticipantRead]:
        people = await rooms.invite_participant(session, caller, room_id, data.user_id)
        return [ParticipantRead.model_validate(p) for p in people]

    @post("/{room_id:uuid}/join")
    async def join(
        self,
        room_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> JoinRead:
        grant = await rooms.issue_join(session, caller, settings, room_id)
        return JoinRead(
            room_id=grant.room.id,
            token=grant.token,
            expires_in_s=grant.expires_in_s,
            ice_servers=grant.ice_servers,
            websocket_path=f"/ws/rooms/{grant.room.id}",
            page_path=f"/room/{grant.room.id}#token={grant.token}",
        )


@websocket("/ws/rooms/{room_id:uuid}")
async def room_socket(
    socket: WebSocket[Any, Any, Any],
    room_id: FromPath[uuid.UUID],
    db: DatabaseDep,
    settings: SettingsDep,
    channels: ChannelsDep,
) -> None:
    """Signalling for one participant: the first message is ``{"type": "auth", "token": <join
    token>}`` (``"precall": true`` for the pre-call check alone, without joining); see
    telehealth.rtc.messages."""
    await socket.accept()

    async def close(code: int, reason: str) -> None:
        await socket.close(code=code, reason=reason)

    async def receive() -> str:
        text: str = await socket.receive_text()
        return text

    connection = RoomConnection(
        db,
        settings,
        channels,
        socket.app.state.relay,
        socket.app.state.room_closures,
        room_id,
        Transport(send=socket.send_json, receive=receive, close=close),
        patient_of_room,
    )
    with contextlib.suppress(WebSocketDisconnect):
        await connection.serve()


@get("/room/{room_id:uuid}", include_in_schema=False)
async def room_page(room_id: FromPath[uuid.UUID]) -> File:
    """The consult-room page; it reads the join token from the URL fragment."""
    return File(PAGE, content_disposition_type="inline", media_type="text/html; charset=utf-8")


@get("/room/assets/room.js", include_in_schema=False)
async def room_script() -> File:
    return File(SCRIPT, content_disposition_type="inline", media_type="text/javascript")


@get("/room/assets/room.css", include_in_schema=False)
async def room_style() -> File:
    return File(STYLE, content_disposition_type="inline", media_type="text/css")
