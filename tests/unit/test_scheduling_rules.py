"""Pure decisions of the claim loops and the message templates: no database needed."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from telehealth.notifications.messages import TEMPLATES, render
from telehealth.notifications.webhooks import sign, signature_matches
from telehealth.timers.rules import RetryPolicy, is_late, lag_s

NOW = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)


def test_backoff_doubles_up_to_the_cap_then_gives_up() -> None:
    policy = RetryPolicy(max_attempts=6, base_s=30, max_s=300)
    assert [policy.delay_s(n) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert policy.next_attempt(1, NOW) == NOW + timedelta(seconds=30)
    assert policy.next_attempt(5, NOW) == NOW + timedelta(seconds=300)
    assert policy.next_attempt(6, NOW) is None


def test_lag_and_lateness() -> None:
    assert lag_s(NOW, NOW + timedelta(seconds=90)) == 90
    assert lag_s(NOW, NOW - timedelta(seconds=1)) == 0  # fired early (clock skew): no lag
    assert is_late(NOW, NOW + timedelta(seconds=61), 60)
    assert not is_late(NOW, NOW + timedelta(seconds=60), 60)


def test_messages_in_vietnamese_by_default_with_vietnam_time() -> None:
    message = render(
        "appointment.reminder", {"start_at": "2026-11-24T17:30:00+00:00", "lead_minutes": 15}
    )
    assert message.subject == "Nhắc lịch hội chẩn"
    assert "00:30 ngày 25/11/2026" in message.body  # UTC+7 crosses midnight
    english = render(
        "appointment.reminder", {"start_at": "2026-11-24T17:30:00Z", "lead_minutes": 15}, "en"
    )
    assert "25/11/2026 00:30" in english.body
    assert render("room.open", {}, "fr").subject == "Phòng hội chẩn đã mở"


def test_every_template_has_both_languages_and_unknown_kinds_get_a_generic_text() -> None:
    for kind, languages in TEMPLATES.items():
        assert set(languages) == {"vi", "en"}, kind
    generic = render("something.new", {}, "en")
    assert "something.new" in generic.body
    assert render("appointment.cancelled", {"start_at": "2026-11-25T03:00:00+00:00"}).body.endswith(
        "…"
    )


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"kind":"appointment.booked"}'
    header = sign("s3cret", body)
    assert header == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature_matches("s3cret", body, header)
    assert not signature_matches("s3cret", body + b" ", header)
