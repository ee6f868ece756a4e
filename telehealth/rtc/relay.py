"""Media relay through the service, for participants who cannot reach each other directly.

Each relayed participant opens one leg to this process: what they send becomes a source, and
their leg carries, for each other participant, a forwarded track that follows that person's
current source (so a participant who reconnects is picked up again without renegotiating the
others). One source is read once (``MediaRelay``) whatever the number of receivers.

Forwarding is **encoded**: every leg negotiates VP8 and Opus (aiortc ranks them first and
WebRTC endpoints must offer them, RFC 7742 and RFC 7874), each source's track
yields the frames its jitter buffer re-assembled (``av.Packet``, never decoded), and the
senders only packetize them again (aiortc's ``Encoder.pack``). Keyframe requests (PLI/FIR) of a
receiver are passed to the source, and a new receiver waits for a keyframe. aiortc has no public
switch for this (aiortc#55, #449, #1176), so :func:`forward_encoded` wraps the receiver's decoder
queue; should a later aiortc lack it, the relay falls back to decoding and re-encoding (about
ten times the CPU, see BENCHMARKS.md). Relay legs of one room live in one process: see
``relay_lease.py``; an SFU replaces this at scale.
"""

from __future__ import annotations

import asyncio
import fractions
import queue
import time
import uuid
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.contrib.media import MediaBlackhole, MediaRelay
from aiortc.mediastreams import MediaStreamError

SourceKey = tuple[uuid.UUID, uuid.UUID, str]  # room, participant, kind

KEYFRAME_REQUEST_GAP_S = 0.5  # at most two PLIs a second to one source
_QUEUE_ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"


class _EncodedFrames:
    """Stands in for a receiver's decoder queue: whole encoded frames go to the track as
    ``av.Packet``; the end-of-stream marker still reaches the (idle) decoder thread."""

    def __init__(self, original: queue.Queue[Any], track: Any) -> None:
        self.original, self.track = original, track

    def put(self, item: Any) -> None:
        if item is None:
            self.original.put(None)
            return
        codec, frame = item
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = fractions.Fraction(1, codec.clockRate)
        self.track._queue.put_nowait(packet)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.original.get(*args, **kwargs)


def forward_encoded(receiver: RTCRtpReceiver) -> bool:
    """Make ``receiver``'s track yield encoded frames instead of decoded ones.

    Called before the receiver starts (in the ``track`` event). False when this aiortc does not
    have the expected decoder queue: the track then yields decoded frames as usual."""
    original = getattr(receiver, _QUEUE_ATTRIBUTE, None)
    track_queue = getattr(receiver.track, "_queue", None)
    if not isinstance(original, queue.Queue) or not isinstance(track_queue, asyncio.Queue):
        return False
    setattr(receiver, _QUEUE_ATTRIBUTE, _EncodedFrames(original, receiver.track))
    return True


def is_keyframe(packet: Any) -> bool:
    """A VP8 frame whose first byte has the P bit clear is a keyframe (RFC 6386, 9.1)."""
    data = bytes(packet)
    return bool(data) and not data[0] & 0x01


class RelayHub:
    """The current source track of every relayed participant on this process."""

    def __init__(self, relay: MediaRelay) -> None:
        self.relay = relay
        self.sources: dict[SourceKey, MediaStreamTrack] = {}
        self.receivers: dict[SourceKey, RTCRtpReceiver] = {}
        self.changed: dict[SourceKey, asyncio.Event] = {}
        self.drains: dict[SourceKey, MediaBlackhole] = {}
        self.asked_at: dict[SourceKey, float] = {}

    def _event(self, key: SourceKey) -> asyncio.Event:
        return self.changed.setdefault(key, asyncio.Event())

    async def publish(
        self, key: SourceKey, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None
    ) -> None:
        old = self.drains.pop(key, None)
        if old is not None:
            await old.stop()
        # aiortc needs every received track consumed, forwarded or not.
        drain = MediaBlackhole()
        drain.addTrack(self.relay.subscribe(track, buffered=False))
        await drain.start()
        self.drains[key] = drain
        self.sources[key] = track
        if receiver is not None:
            self.receivers[key] = receiver
        event = self._event(key)
        event.set()
        self.changed[key] = asyncio.Event()

    async def withdraw(
        self, room_id: uuid.UUID, user_id: uuid.UUID, tracks: list[MediaStreamTrack]
    ) -> None:
        """Remove these sources of the participant (not a newer leg's, after a reconnect)."""
        mine = [k for k, track in self.sources.items() if k[:2] == (room_id, user_id)]
        for key in [k for k in mine if any(self.sources[k] is t for t in tracks)]:
            self.sources.pop(key, None)
            self.receivers.pop(key, None)
            self.asked_at.pop(key, None)
            drain = self.drains.pop(key, None)
            if drain is not None:
                await drain.stop()

    async def current(
        self, key: SourceKey, not_this: MediaStreamTrack | None = None
    ) -> MediaStreamTrack:
        """The key's source, waiting for one (other than an ended one) to appear."""
        while key not in self.sources or self.sources[key] is not_this:
            await self._event(key).wait()
        return self.sources[key]

    def request_keyframe(self, key: SourceKey) -> None:
        """Ask the source's sender for a keyframe (a PLI), at most every half second."""
        receiver = self.receivers.get(key)
        now = time.monotonic()
        if receiver is None or now - self.asked_at.get(key, 0.0) < KEYFRAME_REQUEST_GAP_S:
            return
        self.asked_at[key] = now
        for source in receiver.getSynchronizationSources():
            asyncio.get_running_loop().create_task(receiver._send_rtcp_pli(source.source))


class ForwardedTrack(MediaStreamTrack):
    """Frames of one other participant's source, whichever source is current.

    Encoded video starts at a keyframe and keeps a steadily increasing timestamp across a
    change of source (a reconnect), so that the receiver's decoder never sees a gap it cannot
    handle."""

    def __init__(self, hub: RelayHub, key: SourceKey) -> None:
        super().__init__()
        self.kind = key[2]
        self.hub, self.key = hub, key
        self.source: Any = None
        self.origin: MediaStreamTrack | None = None
        self.ended_source: MediaStreamTrack | None = None
        self.needs_keyframe = True
        self.shift: int | None = None  # added to the current source's timestamps
        self.last_pts: int | None = None

    def keyframe_wanted(self) -> None:
        """The receiver lost a picture (its PLI or FIR reached our sender)."""
        self.needs_keyframe = self.kind == "video"
        self.hub.request_keyframe(self.key)

    async def _next(self) -> Any:
        while True:
            if self.source is None:
                track = await self.hub.current(self.key, not_this=self.ended_source)
                self.source, self.origin = self.hub.relay.subscribe(track, buffered=False), track
                self.shift, self.needs_keyframe = None, self.kind == "video"
                self.hub.request_keyframe(self.key)
            try:
                return await self.source.recv()
            except MediaStreamError:
                self.source, self.ended_source = None, self.origin  # wait for the next source

    async def recv(self) -> Any:
        while True:
            item = await self._next()
            if not isinstance(item, av.Packet):
                return item  # decoded frames: the sender re-encodes them
            if self.needs_keyframe:
                if not is_keyframe(item):
                    self.hub.request_keyframe(self.key)
                    continue
                self.needs_keyframe = False
            pts = int(item.pts or 0)
            if self.shift is None:
                step = 3000 if self.kind == "video" else 960  # one frame at 30 fps / 20 ms
                self.shift = -pts if self.last_pts is None else self.last_pts + step - pts
            # The packet is shared by every receiver of the source: send a copy of our own.
            own = av.Packet(bytes(item))
            own.pts, own.time_base = pts + self.shift, item.time_base
            self.last_pts = own.pts
            return own


def attach_forwarded(sender: RTCRtpSender, track: ForwardedTrack) -> None:
    """Route the receiver's keyframe requests for this sender to the forwarded source (aiortc's
    sender would otherwise only flag its own encoder, which encoded frames never pass)."""
    sender._send_keyframe = track.keyframe_wanted  # type: ignore[method-assign]
