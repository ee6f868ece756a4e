"""Pure decisions of video rooms and the credentials handed to participants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from telehealth.auth.tokens import read_access_token
from telehealth.errors import InvalidInput, NotAuthenticated
from telehealth.rtc import rules
from telehealth.rtc.credentials import (
    JoinClaims,
    TokenExpired,
    WrongRoom,
    issue_join_token,
    read_join_token,
    turn_credentials,
)
from telehealth.rtc.messages import BadMessage, Offer, parse_message
from telehealth.rtc.models import RoomState, SessionEventKind
from telehealth.rtc.rules import (
    RoomClosed,
    RoomNotOpenYet,
    check_joinable,
    recording_allowed,
    room_window,
    should_open,
)
from telehealth.settings import Settings

START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SETTINGS = Settings(secret_key="unit-test-key-" + "y" * 32, join_token_ttl_s=60)


def test_window_opens_before_and_closes_after_the_grace_period() -> None:
    window = room_window(START, START + timedelta(minutes=30), 900, 1800)
    assert window.opens_at == START - timedelta(minutes=15)
    assert window.closes_at == START + timedelta(hours=1)
    with pytest.raises(InvalidInput):
        room_window(START, START, 900, 1800)


def test_joinable_only_inside_the_window_and_not_once_ended() -> None:
    window = room_window(START, START + timedelta(minutes=30), 900, 1800)
    check_joinable(RoomState.OPEN, window, START)
    with pytest.raises(RoomNotOpenYet):
        check_joinable(RoomState.SCHEDULED, window, START - timedelta(minutes=16))
    with pytest.raises(RoomClosed):
        check_joinable(RoomState.ACTIVE, window, START + timedelta(hours=1))
    with pytest.raises(RoomClosed):
        check_joinable(RoomState.ENDED, window, START)
    assert should_open(RoomState.SCHEDULED, window, START)
    assert not should_open(RoomState.ACTIVE, window, START)


def test_recording_needs_two_present_and_all_consenting() -> None:
    assert recording_allowed({"a": True, "b": True})
    assert not recording_allowed({"a": True})
    assert not recording_allowed({"a": True, "b": False})


def test_turn_rest_credentials_match_coturn_convention() -> None:
    username, password = turn_credentials("secret", "user-1", START)
    assert username == f"{int(START.timestamp())}:user-1"
    digest = hmac.new(b"secret", username.encode(), hashlib.sha1).digest()
    assert password == base64.b64encode(digest).decode()


def test_join_tokens_are_bound_to_room_and_time_and_are_not_access_tokens() -> None:
    room, user = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    token = issue_join_token(SETTINGS, JoinClaims(room, user, "requester", "A"), now)
    assert read_join_token(SETTINGS, token, room).user_id == user
    with pytest.raises(WrongRoom):
        read_join_token(SETTINGS, token, uuid.uuid4())
    old = issue_join_token(
        SETTINGS, JoinClaims(room, user, "requester", "A"), now - timedelta(hours=1)
    )
    with pytest.raises(TokenExpired):
        read_join_token(SETTINGS, old, room)
    with pytest.raises(NotAuthenticated):
        read_access_token(token, SETTINGS.signing_key)  # a join token opens no API
    other = Settings(secret_key="another-key-" + "z" * 32)
    with pytest.raises(NotAuthenticated):
        read_join_token(other, token, room)


def test_messages_are_validated() -> None:
    to = uuid.uuid4()
    assert isinstance(parse_message(f'{{"type":"offer","to":"{to}","sdp":"v=0 sdp text"}}'), Offer)
    for text in ('{"type":"offer"}', "[]", '{"type":"leave","extra":1}'):
        with pytest.raises(BadMessage) as caught:
            parse_message(text)
        assert caught.value.reason == "malformed"
    with pytest.raises(BadMessage) as caught:
        parse_message(" " * 70_000)
    assert caught.value.reason == "too_large"


def test_a_session_spans_from_the_first_arrival_to_the_last_leave_once_the_room_is_empty() -> None:
    t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [
        (SessionEventKind.JOIN, t0, a),
        (SessionEventKind.MUTE, t0 + timedelta(minutes=1), a),
        (SessionEventKind.JOIN, t0 + timedelta(minutes=2), b),
        (SessionEventKind.LEAVE, t0 + timedelta(minutes=9), b),
        (SessionEventKind.LEAVE, t0 + timedelta(minutes=10), a),
    ]
    span = rules.session_span(events, anyone_connected=False)
    assert (span.started_at, span.ended_at) == (t0, t0 + timedelta(minutes=10))
    assert span.joined == {a, b}
    assert rules.session_span(events, anyone_connected=True).ended_at is None
    assert rules.session_span([], anyone_connected=False) == rules.SessionSpan(
        None, None, frozenset()
    )
