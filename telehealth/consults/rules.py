"""Pure decisions about consults: the state machine, queue order, vital signs, timers.

No I/O here; the service loads, asks these functions, and writes what they decide.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telehealth.availability.models import Slot
from telehealth.consults.models import AppointmentStatus, ConsultRequest, ConsultStatus, Priority
from telehealth.errors import InvalidInput, InvalidTransition

S = ConsultStatus

# An appointment's video room may be used only while it is in these states; leaving them (it
# is cancelled, a no-show or completed) closes the room.
LIVE_APPOINTMENT = frozenset({AppointmentStatus.BOOKED, AppointmentStatus.IN_PROGRESS})

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[ConsultStatus], ConsultStatus]] = {
    "submit": (frozenset({S.DRAFT}), S.REQUESTED),
    "accept": (frozenset({S.REQUESTED}), S.ACCEPTED),
    "assign": (frozenset({S.REQUESTED, S.ACCEPTED}), S.ACCEPTED),
    "decline": (frozenset({S.REQUESTED, S.ACCEPTED}), S.DECLINED),
    "requeue": (frozenset({S.DECLINED}), S.REQUESTED),
    "resubmit": (frozenset({S.DECLINED}), S.REQUESTED),
    "schedule": (frozenset({S.ACCEPTED}), S.SCHEDULED),
    "reschedule": (frozenset({S.SCHEDULED}), S.SCHEDULED),
    "unschedule": (frozenset({S.SCHEDULED}), S.ACCEPTED),
    "no_show": (frozenset({S.SCHEDULED}), S.ACCEPTED),
    "start": (frozenset({S.SCHEDULED}), S.IN_PROGRESS),
    "complete": (frozenset({S.SCHEDULED, S.IN_PROGRESS}), S.COMPLETED),
    "cancel": (
        frozenset({S.DRAFT, S.REQUESTED, S.ACCEPTED, S.SCHEDULED, S.DECLINED}),
        S.CANCELLED,
    ),
    "expire": (frozenset({S.REQUESTED, S.ACCEPTED}), S.EXPIRED),
    "escalate": (frozenset({S.REQUESTED}), S.REQUESTED),  # handed on by the escalation timer
}
REASON_REQUIRED = frozenset({"decline", "cancel", "unschedule", "no_show"})
FINAL = frozenset({S.COMPLETED, S.CANCELLED, S.EXPIRED})

_STATUS_VI = {
    S.DRAFT: "nháp",
    S.REQUESTED: "đang chờ tiếp nhận",
    S.ACCEPTED: "đã tiếp nhận",
    S.SCHEDULED: "đã đặt lịch",
    S.IN_PROGRESS: "đang hội chẩn",
    S.COMPLETED: "đã hoàn thành",
    S.DECLINED: "bị từ chối",
    S.CANCELLED: "đã hủy",
    S.EXPIRED: "đã hết hạn",
}


def next_status(action: str, current: ConsultStatus, reason: str | None = None) -> ConsultStatus:
    """The state ``action`` leads to from ``current``; 409 naming the current state if none."""
    if action not in TRANSITIONS:
        raise InvalidInput.for_field("action", f"unknown action '{action}'")
    sources, target = TRANSITIONS[action]
    if current not in sources:
        raise InvalidTransition(
            f"Không thể '{action}' yêu cầu {_STATUS_VI[current]} / cannot {action} a request "
            f"that is {current.value}"
        )
    if action in REASON_REQUIRED and not (reason and reason.strip()):
        raise InvalidInput.for_field("reason", f"give a reason to {action.replace('_', ' ')}")
    return target


def slot_fit(request: ConsultRequest, slot: Slot) -> dict[str, Any]:
    """Whether a request may be booked (or held) in a slot, and the reassignment that booking
    it makes. The slot must be of the request's specialty and hospital; a routine request is
    booked with the specialist who accepted it, an urgent one with whoever is soonest."""
    if slot.specialty_id != request.specialty_id or request.target_organization_id not in (
        None,
        slot.organization_id,
    ):
        raise InvalidInput.for_field("slot_id", "the slot is for another specialty or hospital")
    if slot.practitioner_id == request.assigned_practitioner_id:
        return {}
    if request.priority == Priority.ROUTINE:
        raise InvalidInput.for_field(
            "slot_id", "a routine request is booked with the specialist who accepted it"
        )
    return {
        "assigned_role_id": slot.practitioner_role_id,
        "assigned_practitioner_id": slot.practitioner_id,
    }


PRIORITY_RANK = {Priority.EMERGENCY: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}


def escalation_due(
    priority: Priority, submitted_at: datetime, deadlines_s: dict[str, int]
) -> datetime:
    """When an unanswered request escalates: the configured deadline for its priority."""
    return submitted_at + timedelta(seconds=deadlines_s[priority.value])


@dataclass(frozen=True)
class PlannedTimer:
    kind: str
    due_at: datetime
    payload: dict[str, Any]


REMINDER_LEADS_MIN = (1440, 15)
ROOM_OPENS_BEFORE = timedelta(minutes=10)
NO_SHOW_AFTER = timedelta(minutes=15)
APPOINTMENT_TIMER_KINDS = ("appointment.reminder", "room.open", "appointment.no_show")


def appointment_timers(
    starts_at: datetime,
    now: datetime,
    leads_min: Sequence[int] = REMINDER_LEADS_MIN,
    room_opens_before: timedelta = ROOM_OPENS_BEFORE,
    no_show_after: timedelta = NO_SHOW_AFTER,
) -> list[PlannedTimer]:
    """Reminders (a day and 15 minutes before, by default), room opening, no-show check; past
    ones dropped except the no-show check, which always follows the start. Each payload names
    the start it was planned for, so a timer of a moved appointment recognises itself."""
    start = starts_at.isoformat()
    planned = [
        PlannedTimer(
            "appointment.reminder",
            starts_at - timedelta(minutes=lead),
            {"lead_minutes": lead, "starts_at": start},
        )
        for lead in leads_min
    ]
    planned.append(PlannedTimer("room.open", starts_at - room_opens_before, {"starts_at": start}))
    planned = [timer for timer in planned if timer.due_at > now]
    planned.append(
        PlannedTimer("appointment.no_show", starts_at + no_show_after, {"starts_at": start})
    )
    return planned


@dataclass(frozen=True)
class EscalationStep:
    """Where an unanswered request goes next: a specialist's service, the coordinator, or
    nowhere (it expires)."""

    kind: str  # "specialist", "coordinator", "expire"
    role_id: uuid.UUID | None = None


def next_escalation(
    services: Sequence[uuid.UUID], tried: frozenset[uuid.UUID], coordinator_tried: bool
) -> EscalationStep:
    """The first service (in the given, deterministic order) not tried yet; when all were,
    the coordinator on duty, once; after that the request expires."""
    for role_id in services:
        if role_id not in tried:
            return EscalationStep("specialist", role_id)
    if not coordinator_tried:
        return EscalationStep("coordinator")
    return EscalationStep("expire")


@dataclass(frozen=True)
class VitalRange:
    low: float
    high: float
    unit: str
    label: str


# Plausible (not normal) ranges: outside them the value is almost surely a typing error.
VITAL_RANGES = {
    "heart_rate": VitalRange(20, 250, "/min", "heart rate"),
    "systolic_bp": VitalRange(40, 300, "mmHg", "systolic blood pressure"),
    "diastolic_bp": VitalRange(20, 200, "mmHg", "diastolic blood pressure"),
    "respiratory_rate": VitalRange(4, 80, "/min", "respiratory rate"),
    "temperature_c": VitalRange(30, 44, "°C", "temperature"),
    "spo2": VitalRange(50, 100, "%", "oxygen saturation"),
    "weight_kg": VitalRange(0.3, 350, "kg", "weight"),
    "height_cm": VitalRange(25, 250, "cm", "height"),
    "blood_glucose_mmol": VitalRange(1, 60, "mmol/L", "blood glucose"),
}


def check_vital_signs(vitals: dict[str, float]) -> dict[str, float]:
    for name, value in vitals.items():
        limits = VITAL_RANGES.get(name)
        if limits is None:
            known = ", ".join(VITAL_RANGES)
            raise InvalidInput.for_field(f"vital_signs.{name}", f"unknown sign; use one of {known}")
        if not limits.low <= value <= limits.high:
            raise InvalidInput.for_field(
                f"vital_signs.{name}",
                f"{value:g} {limits.unit} is not a plausible {limits.label} "
                f"({limits.low:g}–{limits.high:g} {limits.unit})",
            )
    if vitals.get("diastolic_bp", 0) >= vitals.get("systolic_bp", float("inf")):
        raise InvalidInput.for_field(
            "vital_signs.diastolic_bp", "must be lower than the systolic pressure"
        )
    return vitals


# Attachments ---------------------------------------------------------------------------------

_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"%PDF-", "application/pdf", ".pdf"),
)


def sniff_media_type(head: bytes) -> tuple[str, str]:
    """The media type and extension of an attachment, from its first bytes, never from the
    name or the type the client claims: only JPEG, PNG and PDF are kept."""
    for signature, media_type, extension in _SIGNATURES:
        if head.startswith(signature):
            return media_type, extension
    raise InvalidInput.for_field(
        "file", "only photos (JPEG, PNG) and PDF documents can be attached"
    )


def safe_filename(name: str | None, extension: str) -> str:
    """A display name without path parts or control characters, ending in the sniffed type."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>:|?*;')
    stem = base.rsplit(".", 1)[0].strip(" .")[:80] or "attachment"
    return f"{stem}{extension}"
