"""The service's own aiortc peer: the pre-call check and recording with consent.

Each media leg (one RTCPeerConnection between a participant and this process) decodes and often
re-encodes video, about 0.2 core per VP8 640x480 stream here, so a process holds at most
``media_capacity`` legs and refuses the next one plainly rather than degrading every room.
Legs belong to the signalling connection that asked for them and end with it.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRecorder, MediaRelay

from telehealth.db import Database
from telehealth.metrics import MEDIA_LEGS
from telehealth.rtc.models import Recording, SessionEventKind
from telehealth.rtc.relay import (
    ForwardedTrack,
    RelayHub,
    attach_forwarded,
    forward_encoded,
)
from telehealth.rtc.service import record_event
from telehealth.settings import Settings
from telehealth.storage import create_private_file, private_dir
from telehealth.timeutil import utcnow


class MediaRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Leg:
    kind: str
    pc: RTCPeerConnection
    started: float = field(default_factory=time.monotonic)
    sinks: list[Any] = field(default_factory=list)
    recording_id: uuid.UUID | None = None
    path: Path | None = None
    room_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    measured: tuple[float, int] = field(default_factory=lambda: (time.monotonic(), 0))


class MediaPeers:
    """The aiortc legs of this process, owned by the application's lifespan."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self.relay = MediaRelay()
        self.hub = RelayHub(self.relay)
        self.legs: dict[tuple[str, str], Leg] = {}

    @property
    def in_use(self) -> int:
        return len(self.legs)

    def _configuration(self) -> RTCConfiguration:
        # Always our own STUN (aiortc would otherwise use a public one), never none at all.
        return RTCConfiguration(
            iceServers=[RTCIceServer(urls=url) for url in self.settings.stun_urls]
        )

    def _reserve(self, connection_id: str, kind: str) -> RTCPeerConnection:
        if (connection_id, kind) in self.legs:
            raise MediaRefused("busy", f"a {kind} is already running on this connection")
        if self.in_use >= self.settings.media_capacity:
            raise MediaRefused(
                "capacity",
                "Máy chủ đang đầy, không thể nhận thêm luồng video; hãy thử lại sau. / "
                "The media server is at capacity; try again later.",
            )
        pc = RTCPeerConnection(self._configuration())
        self.legs[(connection_id, kind)] = Leg(kind, pc)
        MEDIA_LEGS.labels(kind).inc()

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            # The participant is gone without a word (their signalling process may have died).
            leg = self.legs.get((connection_id, kind))
            if pc.connectionState == "failed" and leg is not None and leg.pc is pc:
                await self._end(connection_id, kind)

        return pc

    async def _answer(self, pc: RTCPeerConnection, sdp: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def precall(self, connection_id: str, sdp: str) -> str:
        """Echo the participant's camera and microphone back to them."""
        pc = self._reserve(connection_id, "precall")

        @pc.on("track")
        def on_track(track: Any) -> None:
            pc.addTrack(self.relay.subscribe(track, buffered=False))

        try:
            return await self._answer(pc, sdp)
        except Exception as exc:
            await self._end(connection_id, "precall")
            raise MediaRefused("bad_offer", "the pre-call offer could not be used") from exc

    async def precall_report(self, connection_id: str) -> dict[str, Any]:
        """Round trip, loss and the bitrate that reached us, with the mode they allow."""
        leg = self.legs.get((connection_id, "precall"))
        if leg is None:
            raise MediaRefused("no_precall", "start the pre-call check first")
        stats = await leg.pc.getStats()
        received, lost, packets, rtts = 0, 0, 0, []
        for report in stats.values():
            if report.type == "transport":
                received += report.bytesReceived
            elif report.type == "inbound-rtp":
                packets += report.packetsReceived
                lost += max(report.packetsLost, 0)
            elif report.type == "remote-inbound-rtp" and report.roundTripTime is not None:
                rtts.append(report.roundTripTime)
        now = time.monotonic()
        since, before = leg.measured
        kbps = (received - before) * 8 / max(now - since, 0.001) / 1000
        leg.measured = (now, received)
        loss = 100.0 * lost / (packets + lost) if packets + lost else 0.0
        good = (
            kbps >= self.settings.precall_video_min_kbps
            and loss <= self.settings.precall_video_max_loss_pct
        )
        return {
            "rtt_ms": round(1000 * max(rtts), 1) if rtts else None,
            "loss_pct": round(loss, 2),
            "bitrate_kbps": round(kbps, 1),
            "recommended_mode": "video" if good else "audio_only",
        }

    async def record(
        self, connection_id: str, room_id: uuid.UUID, user_id: uuid.UUID, sdp: str
    ) -> str:
        """Record what this participant sends, to a file under the data directory."""
        pc = self._reserve(connection_id, "record")
        leg = self.legs[(connection_id, "record")]
        folder = private_dir(self.settings.data_dir / "recordings" / str(room_id))
        leg.path = folder / f"{user_id}-{utcnow():%Y%m%dT%H%M%S}-{connection_id}.mkv"
        os.close(create_private_file(leg.path))  # made 0600 here: the recorder keeps the mode
        leg.room_id, leg.user_id = room_id, user_id
        recorder = MediaRecorder(str(leg.path), format="matroska")
        leg.sinks.append(recorder)

        @pc.on("track")
        def on_track(track: Any) -> None:
            recorder.addTrack(track)

        try:
            answer = await self._answer(pc, sdp)
        except Exception as exc:
            await self._end(connection_id, "record")
            raise MediaRefused("bad_offer", "the recording offer could not be used") from exc
        await recorder.start()
        async with self.db.unit_of_work() as session:
            row = Recording(
                room_id=room_id,
                user_id=user_id,
                path=str(leg.path.relative_to(self.settings.data_dir)),
            )
            session.add(row)
            record_event(
                session, room_id, user_id, SessionEventKind.RECORDING_START, {"file": row.path}
            )
        leg.recording_id = row.id
        return answer

    async def relay_leg(
        self,
        connection_id: str,
        room_id: uuid.UUID,
        user_id: uuid.UUID,
        others: list[uuid.UUID],
        sdp: str,
    ) -> str:
        """Take this participant's media and send them the others' through the service."""
        pc = self._reserve(connection_id, "relay")
        leg = self.legs[(connection_id, "relay")]
        leg.room_id, leg.user_id = room_id, user_id
        arrivals: list[tuple[Any, RTCRtpReceiver | None]] = []

        @pc.on("track")
        def on_track(track: Any) -> None:
            receiver = next(
                (t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None
            )
            if receiver is not None and not forward_encoded(receiver):
                receiver = None  # this aiortc decodes: no keyframe requests to pass on
            arrivals.append((track, receiver))

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            free = {"audio": 0, "video": 0}
            for transceiver in pc.getTransceivers():
                free[transceiver.kind] += 1
            for other in others:
                for kind in ("audio", "video"):
                    if free[kind]:  # one offered transceiver per forwarded track
                        free[kind] -= 1
                        forwarded = ForwardedTrack(self.hub, (room_id, other, kind))
                        attach_forwarded(pc.addTrack(forwarded), forwarded)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await self._end(connection_id, "relay")
            raise MediaRefused("bad_offer", "the relay offer could not be used") from exc
        for track, receiver in arrivals:
            await self.hub.publish((room_id, user_id, track.kind), track, receiver)
        return str(pc.localDescription.sdp)

    def records(self, room_id: uuid.UUID) -> bool:
        return any(leg.kind == "record" and leg.room_id == room_id for leg in self.legs.values())

    async def stop_recordings(self, room_id: uuid.UUID) -> None:
        for (connection_id, kind), leg in list(self.legs.items()):
            if kind == "record" and leg.room_id == room_id:
                await self._end(connection_id, kind)

    async def release(self, connection_id: str) -> None:
        for conn, kind in list(self.legs):
            if conn == connection_id:
                await self._end(conn, kind)

    async def _end(self, connection_id: str, kind: str) -> None:
        leg = self.legs.pop((connection_id, kind), None)
        if leg is None:
            return
        MEDIA_LEGS.labels(kind).dec()
        if leg.kind == "relay" and leg.room_id is not None and leg.user_id is not None:
            received = [t.receiver.track for t in leg.pc.getTransceivers()]
            await self.hub.withdraw(leg.room_id, leg.user_id, received)
        for sink in leg.sinks:
            with suppress(Exception):
                await sink.stop()
        with suppress(Exception):
            await leg.pc.close()
        if leg.recording_id is not None and leg.room_id is not None:
            size = leg.path.stat().st_size if leg.path and leg.path.exists() else 0
            async with self.db.unit_of_work() as session:
                row = await session.get(Recording, leg.recording_id)
                if row is not None:
                    row.stopped_at, row.size_bytes = utcnow(), size
                    session.add(row)
                record_event(
                    session,
                    leg.room_id,
                    leg.user_id,
                    SessionEventKind.RECORDING_STOP,
                    {"bytes": size},
                )

    async def close(self) -> None:
        await asyncio.gather(
            *(self._end(conn, kind) for conn, kind in list(self.legs)), return_exceptions=True
        )
