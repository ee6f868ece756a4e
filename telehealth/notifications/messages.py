"""Every message text, per notification kind and language: Vietnamese first, English too.

Templates are filled from the notification's ``params``; a param whose name ends in ``_at``
(an ISO 8601 UTC time) is shown in Asia/Ho_Chi_Minh. To add a kind, add one entry to
``TEMPLATES``; a kind without one gets the generic text, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from telehealth.timeutil import VIETNAM, local

LANGUAGES = ("vi", "en")

# kind -> language -> (subject, body)
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "appointment.booked": {
        "vi": ("Đã đặt lịch hội chẩn", "Buổi hội chẩn từ xa đã được đặt lúc {start_at}."),
        "en": ("Consult booked", "A remote consult has been booked for {start_at}."),
    },
    "appointment.rescheduled": {
        "vi": ("Lịch hội chẩn đã thay đổi", "Buổi hội chẩn được dời sang {start_at}."),
        "en": ("Consult rescheduled", "The consult has been moved to {start_at}."),
    },
    "appointment.cancelled": {
        "vi": (
            "Lịch hội chẩn đã bị hủy",
            "Buổi hội chẩn lúc {start_at} đã bị hủy. Lý do: {reason}",
        ),
        "en": ("Consult cancelled", "The consult at {start_at} was cancelled. Reason: {reason}"),
    },
    "appointment.reminder": {
        "vi": (
            "Nhắc lịch hội chẩn",
            "Buổi hội chẩn từ xa bắt đầu lúc {start_at} (còn {lead_minutes} phút).",
        ),
        "en": (
            "Consult reminder",
            "Your remote consult starts at {start_at} (in {lead_minutes} minutes).",
        ),
    },
    "room.open": {
        "vi": ("Phòng hội chẩn đã mở", "Phòng cho buổi hội chẩn lúc {start_at} đã mở, mời vào."),
        "en": ("Consult room open", "The room for the consult at {start_at} is open: join now."),
    },
    "appointment.no_show": {
        "vi": ("Vắng mặt", "Không ai vào buổi hội chẩn lúc {start_at}; đã ghi nhận vắng mặt."),
        "en": ("No-show", "Nobody joined the consult at {start_at}; it is marked as a no-show."),
    },
    "request.escalated": {
        "vi": (
            "Yêu cầu hội chẩn cần xử lý",
            "Yêu cầu hội chẩn mức {priority} chưa được tiếp nhận từ {requested_at}; "
            "đã chuyển đến bạn.",
        ),
        "en": (
            "Consult request needs you",
            "A {priority} consult request unanswered since {requested_at} was escalated to you.",
        ),
    },
    "request.expired": {
        "vi": ("Yêu cầu hội chẩn hết hạn", "Không ai tiếp nhận yêu cầu hội chẩn; đã hết hạn."),
        "en": ("Consult request expired", "Nobody accepted the consult request; it expired."),
    },
}

GENERIC: dict[str, tuple[str, str]] = {
    "vi": ("Thông báo từ hệ thống hội chẩn từ xa", "Có cập nhật mới ({kind})."),
    "en": ("Telehealth notification", "There is an update ({kind})."),
}

_TIME_FORMAT = {"vi": "%H:%M ngày %d/%m/%Y", "en": "%d/%m/%Y %H:%M"}


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "…"


def _shown(key: str, value: Any, language: str, zone: ZoneInfo) -> str:
    if key.endswith("_at") and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return local(moment, zone).strftime(_TIME_FORMAT[language])
    return str(value)


def render(
    kind: str, params: dict[str, Any], language: str = "vi", zone: ZoneInfo = VIETNAM
) -> Message:
    """The message for ``kind`` in ``language`` (Vietnamese for anything unknown)."""
    language = language if language in LANGUAGES else "vi"
    subject, body = TEMPLATES.get(kind, GENERIC)[language]
    values = _Params({key: _shown(key, value, language, zone) for key, value in params.items()})
    values.setdefault("kind", kind)
    if "starts_at" in values:  # the consults area writes ``starts_at``; templates say start_at
        values.setdefault("start_at", values["starts_at"])
    return Message(subject.format_map(values), body.format_map(values))
