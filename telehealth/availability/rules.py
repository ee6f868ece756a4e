"""Pure decisions about availability: checking rules, turning them into slots, overlap.

Rules are local wall-clock times; Asia/Ho_Chi_Minh has had no daylight saving since 1975, but
the conversion goes through ``zoneinfo`` all the same, so another zone would work too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from telehealth.errors import InvalidInput


@dataclass(frozen=True)
class WeeklyRule:
    weekday: int
    start_time: time
    end_time: time
    slot_minutes: int
    valid_from: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class Window:
    """A UTC window: an exception's span (``slot_minutes`` set for extra hours)."""

    starts_at: datetime
    ends_at: datetime
    slot_minutes: int | None = None


@dataclass(frozen=True, order=True)
class Span:
    starts_at: datetime
    ends_at: datetime


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open intervals: a consult ending at 09:30 does not overlap one starting at 09:30."""
    return a_start < b_end and b_start < a_end


def check_rule(rule: WeeklyRule) -> None:
    if not 0 <= rule.weekday <= 6:
        raise InvalidInput.for_field("weekday", "0 (Monday) to 6 (Sunday)")
    if rule.end_time <= rule.start_time:
        raise InvalidInput.for_field("end_time", "must be after start_time on the same day")
    length = (
        datetime.combine(date.min, rule.end_time) - datetime.combine(date.min, rule.start_time)
    ).seconds // 60
    if rule.slot_minutes > length:
        raise InvalidInput.for_field(
            "slot_minutes", f"a {rule.slot_minutes}-minute slot does not fit in {length} minutes"
        )
    if rule.valid_from and rule.valid_until and rule.valid_until < rule.valid_from:
        raise InvalidInput.for_field("valid_until", "is before valid_from")


def check_rule_clashes(new: WeeklyRule, existing: Iterable[WeeklyRule]) -> None:
    """One service's rules must not overlap on the same weekday (their slots would)."""
    for other in existing:
        same_period = not (
            (new.valid_until and other.valid_from and new.valid_until < other.valid_from)
            or (other.valid_until and new.valid_from and other.valid_until < new.valid_from)
        )
        if (
            other.weekday == new.weekday
            and same_period
            and new.start_time < other.end_time
            and other.start_time < new.end_time
        ):
            raise InvalidInput.for_field(
                "start_time",
                f"overlaps the rule {other.start_time:%H:%M}–{other.end_time:%H:%M} "
                "on the same weekday",
            )


def check_window(window: Window) -> None:
    if window.ends_at <= window.starts_at:
        raise InvalidInput.for_field("ends_at", "must be after starts_at")
    if window.ends_at - window.starts_at > timedelta(days=366):
        raise InvalidInput.for_field("ends_at", "an exception lasts at most a year")


def _cut(start: datetime, end: datetime, minutes: int) -> list[Span]:
    step = timedelta(minutes=minutes)
    spans = []
    moment = start
    while moment + step <= end:
        spans.append(Span(moment, moment + step))
        moment += step
    return spans


def generate_slots(
    rules: Iterable[WeeklyRule],
    exceptions: Iterable[Window],
    first_day: date,
    last_day: date,
    zone: ZoneInfo,
    not_before: datetime,
) -> list[Span]:
    """The slots of local days ``first_day``..``last_day`` (inclusive), in UTC, sorted.

    Weekly rules give slots on their weekdays; *unavailable* windows remove every rule slot
    they touch; *extra* windows add slots of their own length (even inside leave: they are
    the specialist's explicit choice), except where one would overlap a slot already made.
    Slots starting before ``not_before`` are left out.
    """
    rules = list(rules)
    exceptions = list(exceptions)
    spans: set[Span] = set()
    day = first_day
    while day <= last_day:
        for rule in rules:
            if rule.weekday != day.weekday():
                continue
            if (rule.valid_from and day < rule.valid_from) or (
                rule.valid_until and day > rule.valid_until
            ):
                continue
            start = datetime.combine(day, rule.start_time, zone).astimezone(ZoneInfo("UTC"))
            end = datetime.combine(day, rule.end_time, zone).astimezone(ZoneInfo("UTC"))
            spans.update(_cut(start, end, rule.slot_minutes))
        day += timedelta(days=1)
    blocked = [w for w in exceptions if w.slot_minutes is None]
    spans = {
        span
        for span in spans
        if not any(overlaps(span.starts_at, span.ends_at, w.starts_at, w.ends_at) for w in blocked)
    }
    window_start = datetime.combine(first_day, time(0), zone)
    window_end = datetime.combine(last_day + timedelta(days=1), time(0), zone)
    for extra in exceptions:
        if extra.slot_minutes is None:
            continue
        for span in _cut(extra.starts_at, extra.ends_at, extra.slot_minutes):
            inside = window_start <= span.starts_at < window_end
            if inside and not any(
                overlaps(span.starts_at, span.ends_at, s.starts_at, s.ends_at) for s in spans
            ):
                spans.add(span)
    return sorted(span for span in spans if span.starts_at >= not_before)


@dataclass(frozen=True)
class SlotPlan:
    """What regeneration does: slots to add, free slots to remove, booked ones left orphaned."""

    add: list[Span]
    remove: list[Span]
    conflicts: list[Span]


def plan_regeneration(
    wanted: Iterable[Span], free: Iterable[Span], taken: Iterable[Span]
) -> SlotPlan:
    """Compare the slots the rules want with those that exist. Taken (booked or held) slots are
    never touched: if the rules no longer want one it is a conflict to report, and a wanted
    slot that would overlap a taken one is not added."""
    wanted_set = set(wanted)
    free_set = set(free)
    taken_list = list(taken)
    add = [
        span
        for span in sorted(wanted_set - free_set)
        if not any(
            overlaps(span.starts_at, span.ends_at, t.starts_at, t.ends_at) for t in taken_list
        )
    ]
    remove = sorted(free_set - wanted_set)
    conflicts = sorted(t for t in taken_list if t not in wanted_set)
    return SlotPlan(add, remove, conflicts)
