"""Media relay through the service, for participants who cannot reach each other directly.

Each relayed participant opens one leg to this process: what they send becomes a source, and
their leg carries, for each other participant, a forwarded track that follows that person's
current source (so a participant who reconnects is picked up again without renegotiating the
others). aiortc decodes and re-encodes every forwarded video: the legs count against the
process's media capacity. Relay legs of one room must reach the same process: route
``/ws/rooms/<id>`` by room when running several (see docs/rtc.md); an SFU replaces this at scale.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaBlackhole, MediaRelay
from aiortc.mediastreams import MediaStreamError

SourceKey = tuple[uuid.UUID, uuid.UUID, str]  # room, participant, kind


class RelayHub:
    """The current source track of every relayed participant on this process."""

    def __init__(self, relay: MediaRelay) -> None:
        self.relay = relay
        self.sources: dict[SourceKey, MediaStreamTrack] = {}
        self.changed: dict[SourceKey, asyncio.Event] = {}
        self.drains: dict[SourceKey, MediaBlackhole] = {}

    def _event(self, key: SourceKey) -> asyncio.Event:
        return self.changed.setdefault(key, asyncio.Event())

    async def publish(self, key: SourceKey, track: MediaStreamTrack) -> None:
        old = self.drains.pop(key, None)
        if old is not None:
            await old.stop()
        # aiortc needs every received track consumed, forwarded or not.
        drain = MediaBlackhole()
        drain.addTrack(self.relay.subscribe(track, buffered=False))
        await drain.start()
        self.drains[key] = drain
        self.sources[key] = track
        event = self._event(key)
        event.set()
        self.changed[key] = asyncio.Event()

    async def withdraw(self, room_id: uuid.UUID, user_id: uuid.UUID) -> None:
        for key in [k for k in self.sources if k[:2] == (room_id, user_id)]:
            self.sources.pop(key, None)
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


class ForwardedTrack(MediaStreamTrack):
    """Frames of one other participant's source, whichever source is current."""

    def __init__(self, hub: RelayHub, key: SourceKey) -> None:
        super().__init__()
        self.kind = key[2]
        self.hub, self.key = hub, key
        self.source: Any = None
        self.ended_source: MediaStreamTrack | None = None

    async def recv(self) -> Any:
        while True:
            if self.source is None:
                track = await self.hub.current(self.key, not_this=self.ended_source)
                self.source, self.origin = self.hub.relay.subscribe(track, buffered=False), track
            try:
                return await self.source.recv()
            except MediaStreamError:
                self.source, self.ended_source = None, self.origin  # wait for the next source
