"""Pure decisions about rooms: when they open and close, who may join, recording consent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from telehealth.errors import Conflict, InvalidInput
from telehealth.rtc.models import RoomState, SessionEventKind


class RoomNotOpenYet(Conflict):
    title = "Room not open yet"


class RoomClosed(Conflict):
    title = "Room closed"


@dataclass(frozen=True)
class RoomWindow:
    opens_at: datetime
    closes_at: datetime


def room_window(
    starts_at: datetime, ends_at: datetime, open_before_s: int, grace_after_s: int
) -> RoomWindow:
    """A room opens ``open_before_s`` before the consult and closes ``grace_after_s`` after it."""
    if ends_at <= starts_at:
        raise InvalidInput.for_field("ends_at", "must be after starts_at")
    return RoomWindow(
        opens_at=starts_at - timedelta(seconds=open_before_s),
        closes_at=ends_at + timedelta(seconds=grace_after_s),
    )


def check_joinable(state: RoomState, window: RoomWindow, now: datetime) -> None:
    """Refuse, with a reason a person understands, to let anyone into a room now."""
    if state == RoomState.ENDED or now >= window.closes_at:
        raise RoomClosed("Phòng khám đã đóng. / The consult room is closed.")
    if now < window.opens_at:
        raise RoomNotOpenYet(
            "Phòng khám chưa mở; hãy quay lại gần giờ hẹn. / "
            f"The consult room opens at {window.opens_at.isoformat()}."
        )


def should_open(state: RoomState, window: RoomWindow, now: datetime) -> bool:
    return state == RoomState.SCHEDULED and window.opens_at <= now < window.closes_at


def recording_allowed(present: dict[str, bool]) -> bool:
    """Recording needs at least two people present, every one of whom consented."""
    return len(present) >= 2 and all(present.values())


@dataclass(frozen=True)
class SessionSpan:
    started_at: datetime | None
    ended_at: datetime | None
    joined: frozenset[uuid.UUID]


def session_span(
    events: Sequence[tuple[str, datetime, uuid.UUID | None]], anyone_connected: bool
) -> SessionSpan:
    """A session's real start (the first arrival) and end (the last leave, once nobody is
    connected), and who joined at all, from its events in time order."""
    arrivals = [
        (at, user)
        for kind, at, user in events
        if kind in (SessionEventKind.JOIN, SessionEventKind.RECONNECT)
    ]
    leaves = [at for kind, at, _ in events if kind == SessionEventKind.LEAVE]
    return SessionSpan(
        started_at=arrivals[0][0] if arrivals else None,
        ended_at=None if anyone_connected or not leaves else leaves[-1],
        joined=frozenset(user for _, user in arrivals if user is not None),
    )
