"""A reference participant in Python: aiortc media over the real signalling WebSocket.

The tests and ``scripts/bench_rtc`` use it as a browser stand-in. It follows the page's rules:
whoever joins (or rejoins) offers to everyone present; the others answer. Every received track
is consumed (frames counted), as aiortc requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import websockets
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack


class SignallingClient:
    """The WebSocket half: send messages, wait for ones of a given type. With a join token,
    the first message sent is ``auth`` (the token never goes in the URL)."""

    def __init__(self, ws_url: str, token: str | None = None, *, precall: bool = False) -> None:
        self.ws_url = ws_url
        self.token, self.precall = token, precall
        self.ws: Any = None
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.handlers: list[Callable[[dict[str, Any]], Any]] = []
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.ws_url, max_size=2**20)
        self._reader = asyncio.create_task(self._read())
        if self.token is not None:
            auth: dict[str, Any] = {"type": "auth", "token": self.token}
            await self.send({**auth, "precall": True} if self.precall else auth)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                for handler in self.handlers:
                    result = handler(msg)
                    if asyncio.iscoroutine(result):
                        await result
                await self.inbox.put(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            await self.inbox.put({"type": "_closed", "code": self.close_code})

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg))

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def expect(self, kind: str, within_s: float = 20) -> dict[str, Any]:
        """The next message of this type (earlier messages of other types are dropped)."""
        async with asyncio.timeout(within_s):
            while True:
                msg = await self.inbox.get()
                if msg["type"] == kind:
                    return msg
                if msg["type"] == "_closed":
                    raise ConnectionError(f"closed ({msg['code']}) while waiting for {kind}")

    async def expect_any(self, kinds: set[str], within_s: float = 20) -> dict[str, Any]:
        async with asyncio.timeout(within_s):
            while True:
                msg = await self.inbox.get()
                if msg["type"] in kinds:
                    return msg
                if msg["type"] == "_closed":
                    raise ConnectionError(f"closed ({msg['code']}) while waiting for {kinds}")

    async def closed(self, within_s: float = 20) -> int | None:
        if self._reader is not None:
            async with asyncio.timeout(within_s):
                await asyncio.shield(self._reader)
        return self.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


class Participant:
    """Signalling plus one RTCPeerConnection per other participant, sending test media."""

    def __init__(self, base_url: str, room_id: str, token: str, *, audio: bool = True) -> None:
        ws_base = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self.signalling = SignallingClient(f"{ws_base}/ws/rooms/{room_id}", token)
        self.audio = audio
        self.me = ""
        self.welcome: dict[str, Any] = {}
        self.peers: dict[str, RTCPeerConnection] = {}
        self.frames: dict[str, int] = {}
        self.audio_frames: dict[str, int] = {}
        self.first_frame_at: float | None = None
        self.connected_at: dict[str, float] = {}
        self.started = time.perf_counter()
        self._consumers: list[asyncio.Task[None]] = []
        self._frame_event = asyncio.Event()

    async def join(self) -> dict[str, Any]:
        self.started = time.perf_counter()
        self.signalling.handlers.append(self._on_message)
        await self.signalling.connect()
        self.welcome = await self.signalling.expect("welcome")
        self.me = self.welcome["you"]
        for person in self.welcome["participants"]:
            if person["connected"] and person["id"] != self.me:
                await self._offer_to(person["id"])
        return self.welcome

    def _configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in self.welcome.get("ice_servers", [])
        ]
        return RTCConfiguration(iceServers=servers)

    def _new_peer(self, other: str) -> RTCPeerConnection:
        old = self.peers.pop(other, None)
        if old is not None:
            asyncio.get_running_loop().create_task(old.close())
        pc = RTCPeerConnection(self._configuration())
        self.peers[other] = pc
        pc.addTrack(VideoStreamTrack())
        if self.audio:
            pc.addTrack(AudioStreamTrack())

        @pc.on("track")
        def on_track(track: Any) -> None:
            self._consumers.append(asyncio.create_task(self._consume(other, track)))

        @pc.on("iceconnectionstatechange")
        def on_state() -> None:
            if pc.iceConnectionState in ("connected", "completed"):
                self.connected_at.setdefault(other, time.perf_counter())

        return pc

    async def _consume(self, other: str, track: Any) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self._frame_event.set()
            if track.kind == "audio":
                self.audio_frames[other] = self.audio_frames.get(other, 0) + 1
            else:
                self.frames[other] = self.frames.get(other, 0) + 1
                if self.first_frame_at is None:
                    self.first_frame_at = time.perf_counter()
                self._frame_event.set()

    async def _offer_to(self, other: str) -> None:
        pc = self._new_peer(other)
        await pc.setLocalDescription(await pc.createOffer())
        await self.signalling.send({"type": "offer", "to": other, "sdp": pc.localDescription.sdp})

    async def _on_message(self, msg: dict[str, Any]) -> None:
        kind, sender = msg["type"], msg.get("from")
        if kind == "offer" and sender:
            pc = self._new_peer(sender)
            await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.signalling.send(
                {"type": "answer", "to": sender, "sdp": pc.localDescription.sdp}
            )
        elif kind == "answer" and sender in self.peers:
            await self.peers[sender].setRemoteDescription(
                RTCSessionDescription(msg["sdp"], "answer")
            )
        elif kind == "peer_left" and sender in self.peers:
            await self.peers.pop(sender).close()

    async def wait_frames(self, other: str, count: int, within_s: float = 30) -> int:
        """Wait until ``count`` video frames from ``other`` arrived; return how many did."""
        async with asyncio.timeout(within_s):
            while self.frames.get(other, 0) < count:
                self._frame_event.clear()
                await self._frame_event.wait()
        return self.frames[other]

    async def wait_audio(self, other: str, count: int, within_s: float = 30) -> int:
        """Wait until ``count`` audio frames (20 ms each) from ``other`` arrived."""
        async with asyncio.timeout(within_s):
            while self.audio_frames.get(other, 0) < count:
                self._frame_event.clear()
                await self._frame_event.wait()
        return self.audio_frames[other]

    async def leave(self) -> None:
        """Say goodbye and wait until the service has recorded it and closed the socket."""
        with contextlib.suppress(Exception):
            await self.signalling.send({"type": "leave"})
            await self.signalling.closed(within_s=10)
        await self.drop()

    async def drop(self) -> None:
        """Go away without saying goodbye (a lost link)."""
        await self.signalling.close()
        for pc in list(self.peers.values()):
            await pc.close()
        self.peers.clear()
        for task in self._consumers:
            task.cancel()
        self._consumers.clear()


class MediaLeg:
    """A connection to the service's own peer (pre-call check or recording)."""

    def __init__(self, signalling: SignallingClient, ice: list[dict[str, Any]]) -> None:
        self.signalling = signalling
        servers = [RTCIceServer(urls=s["urls"]) for s in ice if "username" not in s]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.frames = 0
        self._consumers: list[asyncio.Task[None]] = []
        self._frame_event = asyncio.Event()

    async def start(
        self, offer_type: str, answer_type: str, *, video: Any = None, audio: bool = True
    ) -> dict[str, Any]:
        """Send our camera and microphone; the reply is the answer or an error message."""
        self.pc.addTrack(video or VideoStreamTrack())
        if audio:
            self.pc.addTrack(AudioStreamTrack())

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            self._consumers.append(asyncio.create_task(self._consume(track)))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.signalling.send({"type": offer_type, "sdp": self.pc.localDescription.sdp})
        while True:
            reply = await self.signalling.expect_any({answer_type, "error"})
            if reply["type"] == "error":
                return reply
            await self.pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
            return reply

    async def _consume(self, track: Any) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.frames += 1
                self._frame_event.set()

    async def wait_frames(self, count: int, within_s: float = 30) -> int:
        async with asyncio.timeout(within_s):
            while self.frames < count:
                self._frame_event.clear()
                await self._frame_event.wait()
        return self.frames

    async def wait_delivered(self, packets: int, within_s: float = 30) -> int:
        """Wait until the far end's receiver reports say it got ``packets`` video packets."""
        async with asyncio.timeout(within_s):
            while True:
                for sender in self.pc.getSenders():
                    if sender.track is None or sender.track.kind != "video":
                        continue
                    for report in (await sender.getStats()).values():
                        if (
                            report.type == "remote-inbound-rtp"
                            and report.packetsReceived >= packets
                        ):
                            return int(report.packetsReceived)
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._consumers:
            task.cancel()
