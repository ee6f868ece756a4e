"""Encoded forwarding (telehealth.rtc.relay) without a network: a forwarded track starts at a
keyframe and keeps its timestamps increasing when the source is replaced (a reconnect)."""

from __future__ import annotations

import asyncio
import fractions
import uuid

import av
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from telehealth.rtc.relay import ForwardedTrack, RelayHub, is_keyframe

KEY = b"\x10\x02\x00\x9d\x01\x2a"  # VP8 frame tag with the P bit clear: a keyframe
DELTA = b"\x31\x02\x00"


class EncodedSource(MediaStreamTrack):
    """A participant's camera as the relay receives it: encoded frames, then the end."""

    kind = "video"

    def __init__(self, frames: list[tuple[bytes, int]]) -> None:
        super().__init__()
        self.frames = list(frames)

    async def recv(self) -> av.Packet:
        await asyncio.sleep(0.01)  # live pace: MediaRelay keeps only the latest frame
        if not self.frames:
            self.stop()
            raise MediaStreamError
        data, pts = self.frames.pop(0)
        packet = av.Packet(data)
        packet.pts, packet.time_base = pts, fractions.Fraction(1, 90000)
        return packet


def test_keyframe_is_told_by_the_vp8_frame_tag() -> None:
    assert is_keyframe(av.Packet(KEY))
    assert not is_keyframe(av.Packet(DELTA))
    assert not is_keyframe(av.Packet(b""))


async def test_forwarded_track_starts_at_a_keyframe_and_survives_a_new_source() -> None:
    hub = RelayHub(MediaRelay())
    key = (uuid.uuid4(), uuid.uuid4(), "video")
    forwarded = ForwardedTrack(hub, key)
    first = EncodedSource([(DELTA, 90000), (KEY, 93000), (DELTA, 96000), (DELTA, 99000)])
    await hub.publish(key, first)
    async with asyncio.timeout(5):
        received = [await forwarded.recv() for _ in range(3)]
    assert [bytes(p) for p in received] == [KEY, DELTA, DELTA]  # the delta before it: dropped
    assert [p.pts for p in received] == [0, 3000, 6000]

    # The participant reconnects: a new source whose clock starts elsewhere (the forwarded
    # track joins it live, at whichever keyframe comes first).
    gop = [(KEY, 0), (DELTA, 3000), (DELTA, 6000)]
    second = EncodedSource([(data, 5000 + pts + 9000 * n) for n in range(4) for data, pts in gop])
    await hub.publish(key, second)
    async with asyncio.timeout(5):
        after = [await forwarded.recv() for _ in range(2)]
    assert [bytes(p) for p in after] == [KEY, DELTA]
    assert [p.pts for p in after] == [9000, 12000]  # one frame after the last, then on
    await hub.withdraw(key[0], key[1], [second])
