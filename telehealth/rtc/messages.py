"""The signalling protocol: messages a participant may send, validated before anything else.

Text frames only, JSON, at most ``MAX_MESSAGE_BYTES``; anything else is answered with an
``error`` message naming the problem and changes nothing. The first message of a connection is
:class:`Auth`, which carries the join token: never the URL, which servers and proxies log.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_MESSAGE_BYTES = 64 * 1024
_T = TypeVar("_T")
_SDP = Annotated[str, Field(min_length=10, max_length=60_000)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_TOKEN = Annotated[str, Field(min_length=1, max_length=4000)]


class Auth(_Message):
    """The first message: the join token, and whether to run the pre-call check alone."""

    type: Literal["auth"]
    token: _TOKEN
    precall: bool = False


class Offer(_Message):
    type: Literal["offer"]
    to: uuid.UUID
    sdp: _SDP


class Answer(_Message):
    type: Literal["answer"]
    to: uuid.UUID
    sdp: _SDP


class Candidate(_Message):
    type: Literal["candidate"]
    to: uuid.UUID
    candidate: Annotated[str, Field(max_length=1000)]
    sdpMid: Annotated[str, Field(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=64)] | None = None


class Mute(_Message):
    type: Literal["mute"]
    audio: bool
    video: bool


class MediaMode(_Message):
    type: Literal["media_mode"]
    mode: Literal["video", "audio_only"]


class Quality(_Message):
    type: Literal["quality"]
    rtt_ms: Annotated[float, Field(ge=0, le=60_000)]
    loss_pct: Annotated[float, Field(ge=0, le=100)]
    bitrate_kbps: Annotated[float, Field(ge=0, le=100_000)]


class Consent(_Message):
    type: Literal["consent"]
    record: bool


class Leave(_Message):
    type: Literal["leave"]


class Refresh(_Message):
    type: Literal["refresh"]


class PrecallOffer(_Message):
    type: Literal["precall_offer"]
    sdp: _SDP


class PrecallReport(_Message):
    type: Literal["precall_report"]


class RecordOffer(_Message):
    type: Literal["record_offer"]
    sdp: _SDP


class RelayOffer(_Message):
    type: Literal["relay_offer"]
    sdp: _SDP


ClientMessage = Annotated[
    Offer
    | Answer
    | Candidate
    | Mute
    | MediaMode
    | Quality
    | Consent
    | Leave
    | Refresh
    | PrecallOffer
    | PrecallReport
    | RecordOffer
    | RelayOffer,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
_AUTH: TypeAdapter[Auth] = TypeAdapter(Auth)


class BadMessage(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def parse_message(text: str) -> ClientMessage:
    """One validated client message, or :class:`BadMessage` saying what is wrong."""
    return _parsed(_ADAPTER, text)


def parse_auth(text: str) -> Auth:
    """The connection's first message, or :class:`BadMessage` saying what is wrong."""
    return _parsed(_AUTH, text)


def _parsed(adapter: TypeAdapter[_T], text: str) -> _T:
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise BadMessage("too_large", f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        return adapter.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        raise BadMessage("malformed", f"{where}: {first['msg']}") from exc
