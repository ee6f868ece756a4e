"""One participant's signalling connection: admit, relay through the room's channel, leave.

Every message between participants goes through the Channels backend on ``room.<uuid>`` (so
participants on different processes reach each other) as a small JSON envelope
``{"from", "conn", "to", "msg"}``. A participant who connects again (a dropped link) is
announced with ``reconnect: true``; their older connection, wherever it is, closes itself, and
the newcomer sends fresh offers to those present, who only answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.consent.models import ConsentPurpose
from telehealth.consent.rules import missing_consent
from telehealth.db import Database
from telehealth.errors import NotAuthenticated, PermissionDenied, TelehealthError
from telehealth.pubsub import Broadcast, room_channel
from telehealth.rtc import messages as m
from telehealth.rtc import presence
from telehealth.rtc.closures import RoomClosures
from telehealth.rtc.credentials import JoinClaims, TokenExpired, WrongRoom, ice_servers
from telehealth.rtc.credentials import issue_join_token as _issue
from telehealth.rtc.media import MediaRefused
from telehealth.rtc.models import SessionEventKind
from telehealth.rtc.relay_lease import RelayRouter
from telehealth.rtc.rules import RoomClosed, RoomNotOpenYet
from telehealth.rtc.service import record_event
from telehealth.settings import Settings
from telehealth.timeutil import utcnow

log = logging.getLogger("telehealth.rtc")

# WebSocket close codes (4000-4999 are the application's) for each kind of refusal.
CLOSE_REPLACED = 4000
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_ROOM_CLOSED = 4410
AUTH_WITHIN_S = 10  # a connection that does not say who it is by then is closed
_REFUSALS: list[tuple[type[TelehealthError], str, int]] = [
    (TokenExpired, "expired", CLOSE_NOT_AUTHENTICATED),
    (WrongRoom, "wrong_room", 4403),
    (NotAuthenticated, "invalid_token", CLOSE_NOT_AUTHENTICATED),
    (PermissionDenied, "not_participant", 4403),
    (RoomClosed, "room_closed", CLOSE_ROOM_CLOSED),
    (RoomNotOpenYet, "room_not_open", 4409),
    (TelehealthError, "refused", 4400),
]


async def _first_of(*work: Coroutine[Any, Any, object]) -> None:
    """Run side by side until one finishes; the others are cancelled."""
    tasks = {asyncio.create_task(each) for each in work}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task


def refusal_of(exc: TelehealthError) -> tuple[str, int]:
    for kind, reason, code in _REFUSALS:
        if isinstance(exc, kind):
            return reason, code
    return "refused", 4400  # pragma: no cover - TelehealthError is last above


# The patient whose consult a room is for: rooms know appointments only by id, so the edge
# that opens a connection passes the consults' answer (``telehealth.consults.rooms``).
PatientOfRoom = Callable[[AsyncSession, uuid.UUID], Awaitable[uuid.UUID]]


@dataclass
class Transport:
    """What the connection needs from a WebSocket (kept abstract to stay framework-free)."""

    send: Callable[[dict[str, Any]], Awaitable[None]]
    receive: Callable[[], Awaitable[str]]
    close: Callable[[int, str], Awaitable[None]]


class RoomConnection:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        channels: Broadcast,
        relay: RelayRouter,
        closures: RoomClosures,
        room_id: uuid.UUID,
        transport: Transport,
        patient_of_room: PatientOfRoom,
    ) -> None:
        self.db, self.settings, self.channels = db, settings, channels
        self.patient_of_room = patient_of_room
        self.relay, self.media, self.closures = relay, relay.media, closures
        self.room_id, self.io = room_id, transport
        self.connection_id = secrets.token_hex(8)
        self.channel = room_channel(room_id)
        self.replaced = False

    async def serve(self) -> None:
        """Wait for the ``auth`` message, then join the room or run the pre-call check alone.
        The join token comes in that message, not in the URL: request lines are logged (by
        uvicorn, proxies, browsers' histories) and a logged token could take the seat over."""
        try:
            async with asyncio.timeout(AUTH_WITHIN_S):
                auth = m.parse_auth(await self.io.receive())
        except (TimeoutError, m.BadMessage) as exc:
            detail = exc.message if isinstance(exc, m.BadMessage) else "no auth message in time"
            await self.io.send(
                {
                    "type": "error",
                    "reason": "auth_required",
                    "message": f'Send {{"type": "auth", "token": ...}} first ({detail}).',
                }
            )
            await self.io.close(CLOSE_NOT_AUTHENTICATED, "auth_required")
            return
        with self.closures.watch(self.room_id) as room_closed:
            if auth.precall:
                await self._precall(auth.token, room_closed)
            else:
                await self._take_part(auth.token, room_closed)

    async def _refuse(self, exc: TelehealthError) -> None:
        reason, code = refusal_of(exc)
        await self.io.send({"type": "error", "reason": reason, "message": exc.detail})
        await self.io.close(code, reason)

    async def _precall(self, token: str, room_closed: asyncio.Event) -> None:
        """A connection for the pre-call check only: it does not join the room."""
        try:
            async with self.db.unit_of_work() as session:
                entry = await presence.verify(session, self.settings, self.room_id, token)
        except TelehealthError as exc:
            await self._refuse(exc)
            return
        claims = entry.claims
        await self.io.send(
            {
                "type": "welcome",
                "precall": True,
                "you": str(claims.user_id),
                "participants": [],
                "ice_servers": self._ice_servers(claims, entry.closes_at),
            }
        )
        try:
            await _first_of(self._from_participant(claims, precall_only=True), room_closed.wait())
        finally:
            await self.media.release(self.connection_id)
            if room_closed.is_set():
                await self._say_closed()
            else:
                with suppress(Exception):
                    await self.io.close(1000, "pre-call check over")

    async def _take_part(self, token: str, room_closed: asyncio.Event) -> None:
        """Admitted, the participant's messages and the room's flow both ways until either
        side ends, the room closes (``room_closed`` set) or a newer connection replaces it."""
        try:
            async with self.db.unit_of_work() as session:
                admission = await presence.admit(
                    session, self.settings, self.room_id, token, self.connection_id
                )
        except TelehealthError as exc:
            await self._refuse(exc)
            return
        claims = admission.claims
        async with self.channels.start_subscription([self.channel]) as subscriber:
            await self._publish(
                claims,
                {"type": "peer_joined", "reconnect": admission.reconnect, "name": claims.name},
            )
            await self.io.send(
                {
                    "type": "welcome",
                    "you": str(claims.user_id),
                    "connection": self.connection_id,
                    "reconnect": admission.reconnect,
                    "participants": [p.as_json() for p in admission.roster],
                    "token": self._fresh_token(claims),
                    "ice_servers": self._ice_servers(claims, admission.closes_at),
                }
            )
            try:
                await _first_of(
                    self._from_participant(claims),
                    self._from_room(claims, subscriber.iter_events()),
                    room_closed.wait(),
                )
            finally:
                await self.relay.release(self.connection_id)
                if room_closed.is_set():
                    await self._say_closed()
                    await self._leave(claims, "room_closed")
                elif not self.replaced:
                    await self._leave(claims, "left")
                    with suppress(Exception):
                        await self.io.close(1000, "left")

    async def _say_closed(self) -> None:
        """The room closed under this connection (its consult is over): say so and end it."""
        with suppress(Exception):
            await self.io.send(
                {
                    "type": "room_closed",
                    "message": "Phòng khám đã đóng. / The consult room is closed.",
                }
            )
            await self.io.close(CLOSE_ROOM_CLOSED, "room_closed")

    def _ice_servers(self, claims: JoinClaims, closes_at: datetime) -> list[dict[str, Any]]:
        return ice_servers(self.settings, str(claims.user_id), utcnow(), closes_at)

    def _fresh_token(self, claims: JoinClaims) -> str:
        return _issue(self.settings, claims, utcnow())

    async def _publish(
        self, claims: JoinClaims, msg: dict[str, Any], to: str | None = None
    ) -> None:
        envelope = {"from": str(claims.user_id), "conn": self.connection_id, "to": to, "msg": msg}
        await self.channels.wait_published(json.dumps(envelope).encode(), [self.channel])

    async def _leave(self, claims: JoinClaims, reason: str) -> None:
        with suppress(TelehealthError):
            async with self.db.unit_of_work() as session:
                await presence.depart(
                    session, self.room_id, claims.user_id, self.connection_id, reason
                )
        with suppress(Exception):
            await self._publish(claims, {"type": "peer_left"})

    async def _from_room(self, claims: JoinClaims, events: Any) -> None:
        me = str(claims.user_id)
        async for raw in events:
            envelope = json.loads(raw)
            sender, msg = envelope["from"], envelope["msg"]
            if sender == me:
                if envelope["conn"] != self.connection_id and msg["type"] == "peer_joined":
                    self.replaced = True
                    await self.io.send({"type": "replaced"})
                    await self.io.close(CLOSE_REPLACED, "replaced by a newer connection")
                    return
                continue
            if envelope["to"] not in (None, me):
                continue
            if msg["type"] in ("consent", "peer_joined"):
                await self._check_recordings()
            await self.io.send({**msg, "from": sender})

    async def _check_recordings(self) -> None:
        """Recording stops as soon as someone present has not (or no longer) consented."""
        if not self.media.records(self.room_id):
            return
        async with self.db.unit_of_work() as session:
            people = await presence.roster(session, self.room_id)
        if not presence.recording_permitted(people):
            await self.media.stop_recordings(self.room_id)

    async def _from_participant(self, claims: JoinClaims, precall_only: bool = False) -> None:
        while True:
            text = await self.io.receive()
            try:
                msg = m.parse_message(text)
            except m.BadMessage as exc:
                await self.io.send({"type": "error", "reason": exc.reason, "message": exc.message})
                continue
            if isinstance(msg, m.Leave):
                return
            if precall_only and not isinstance(msg, m.PrecallOffer | m.PrecallReport):
                await self.io.send(
                    {"type": "error", "reason": "precall_only", "message": "join the room first"}
                )
                continue
            try:
                await self._handle(claims, msg)
            except TelehealthError as exc:
                reason, _ = refusal_of(exc)
                await self.io.send({"type": "error", "reason": reason, "message": exc.detail})
            except MediaRefused as exc:
                await self.io.send({"type": "error", "reason": exc.reason, "message": str(exc)})
            except Exception:
                log.exception("signalling: %s failed in room %s", msg.type, self.room_id)
                await self.io.send(
                    {"type": "error", "reason": "internal", "message": "That did not work; retry."}
                )

    async def _handle(self, claims: JoinClaims, msg: m.ClientMessage) -> None:
        if isinstance(msg, m.Offer | m.Answer | m.Candidate):
            await self._publish(claims, msg.model_dump(mode="json", exclude={"to"}), str(msg.to))
        elif isinstance(msg, m.Refresh):
            await self.io.send({"type": "token", "token": self._fresh_token(claims)})
        elif isinstance(msg, m.Mute | m.MediaMode):
            kind = SessionEventKind.MUTE if isinstance(msg, m.Mute) else SessionEventKind.MEDIA_MODE
            await self._record(claims, kind, msg.model_dump(mode="json", exclude={"type"}))
            await self._publish(claims, msg.model_dump(mode="json"))
        elif isinstance(msg, m.Quality):
            detail = msg.model_dump(mode="json", exclude={"type"})
            await self._record(claims, SessionEventKind.QUALITY, detail)
        elif isinstance(msg, m.Consent):
            async with self.db.unit_of_work() as session:
                people = await presence.give_consent(
                    session, self.room_id, claims.user_id, msg.record
                )
            update = {"type": "consent", "record": msg.record}
            await self._publish(claims, update)
            await self.io.send({**update, "from": str(claims.user_id)})
            if not msg.record or not presence.recording_permitted(people):
                await self.media.stop_recordings(self.room_id)
        elif isinstance(msg, m.PrecallOffer):
            answer = await self.media.precall(self.connection_id, msg.sdp)
            await self.io.send({"type": "precall_answer", "sdp": answer})
        elif isinstance(msg, m.PrecallReport):
            report = await self.media.precall_report(self.connection_id)
            await self._record(claims, SessionEventKind.PRECALL, report)
            await self.io.send({"type": "precall_report", **report})
        elif isinstance(msg, m.RecordOffer):
            await self._start_recording(claims, msg.sdp)
        elif isinstance(msg, m.RelayOffer):
            async with self.db.unit_of_work() as session:
                people = await presence.roster(session, self.room_id)
                others = [p.user_id for p in people if p.user_id != claims.user_id]
                record_event(
                    session,
                    self.room_id,
                    claims.user_id,
                    SessionEventKind.MEDIA_MODE,
                    {"mode": "relay"},
                )
            answer = await self.relay.offer(
                self.connection_id, self.room_id, claims.user_id, others, msg.sdp
            )
            await self.io.send({"type": "relay_answer", "sdp": answer})

    async def _patient_consenting(self) -> uuid.UUID:
        """The room's patient, if they consent to recording now; refused otherwise."""
        async with self.db.unit_of_work() as session:
            patient = await self.patient_of_room(session, self.room_id)
            consents = await presence.patient_consents_to_recording(session, patient)
        if not consents:
            raise MediaRefused(
                "patient_consent_missing", missing_consent(ConsentPurpose.SESSION_RECORDING)
            )
        return patient

    async def _start_recording(self, claims: JoinClaims, sdp: str) -> None:
        patient = await self._patient_consenting()
        async with self.db.unit_of_work() as session:
            people = await presence.roster(session, self.room_id)
        if not presence.recording_permitted(people):
            raise MediaRefused(
                "consent_missing",
                "Chỉ ghi hình khi mọi người trong phòng đồng ý. / "
                "Recording needs the consent of everyone in the room.",
            )
        answer = await self.media.record(
            self.connection_id, self.room_id, claims.user_id, sdp, patient
        )
        try:
            # Checked again once it runs: a withdrawal that committed after the first check,
            # before the recording could hear of it, still stops it.
            await self._patient_consenting()
        except MediaRefused:
            await self.media.stop_recordings_of(patient)
            raise
        await self.io.send({"type": "record_answer", "sdp": answer})

    async def _record(
        self, claims: JoinClaims, kind: SessionEventKind, detail: dict[str, Any]
    ) -> None:
        async with self.db.unit_of_work() as session:
            record_event(session, self.room_id, claims.user_id, kind, detail)
