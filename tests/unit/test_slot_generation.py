"""Slots from weekly rules in Asia/Ho_Chi_Minh, stored in UTC; exceptions; regeneration plans."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from telehealth.availability import rules
from telehealth.availability.rules import Span, WeeklyRule, Window
from telehealth.errors import InvalidInput

VN = ZoneInfo("Asia/Ho_Chi_Minh")
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
MONDAY = date(2026, 12, 7)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_early_morning_local_slots_fall_on_the_previous_utc_day() -> None:
    rule = WeeklyRule(weekday=0, start_time=time(6, 0), end_time=time(8, 0), slot_minutes=30)
    spans = rules.generate_slots([rule], [], MONDAY, MONDAY, VN, LONG_AGO)
    assert spans[0] == Span(utc(2026, 12, 6, 23, 0), utc(2026, 12, 6, 23, 30))
    assert spans[-1] == Span(utc(2026, 12, 7, 0, 30), utc(2026, 12, 7, 1, 0))
    assert len(spans) == 4


def test_late_evening_rule_crosses_no_local_day_but_stays_on_its_weekday() -> None:
    sunday = WeeklyRule(weekday=6, start_time=time(22, 0), end_time=time(23, 30), slot_minutes=45)
    spans = rules.generate_slots([sunday], [], MONDAY - timedelta(days=7), MONDAY, VN, LONG_AGO)
    assert spans == [
        Span(utc(2026, 12, 6, 15, 0), utc(2026, 12, 6, 15, 45)),
        Span(utc(2026, 12, 6, 15, 45), utc(2026, 12, 6, 16, 30)),
    ]


def test_weekdays_validity_and_partial_slots() -> None:
    rule = WeeklyRule(
        weekday=2,
        start_time=time(13, 30),
        end_time=time(15, 10),
        slot_minutes=30,
        valid_from=date(2026, 12, 10),
    )
    spans = rules.generate_slots([rule], [], MONDAY, MONDAY + timedelta(days=13), VN, LONG_AGO)
    # Wednesday 9 Dec is before valid_from; 16 Dec counts; 15:00-15:10 is too short for a slot
    assert [s.starts_at.astimezone(VN).strftime("%d %H:%M") for s in spans] == [
        "16 13:30",
        "16 14:00",
        "16 14:30",
    ]


def test_past_slots_are_not_made() -> None:
    rule = WeeklyRule(weekday=0, start_time=time(8, 0), end_time=time(10, 0), slot_minutes=30)
    now = datetime(2026, 12, 7, 9, 10, tzinfo=VN)
    spans = rules.generate_slots([rule], [], MONDAY, MONDAY, VN, now)
    assert [s.starts_at.astimezone(VN).time() for s in spans] == [time(9, 30)]


def test_leave_removes_slots_it_touches_and_extra_hours_add_some() -> None:
    rule = WeeklyRule(weekday=0, start_time=time(8, 0), end_time=time(10, 0), slot_minutes=30)
    leave = Window(datetime(2026, 12, 7, 8, 45, tzinfo=VN), datetime(2026, 12, 7, 9, 15, tzinfo=VN))
    extra = Window(
        datetime(2026, 12, 7, 9, 30, tzinfo=VN), datetime(2026, 12, 7, 11, 0, tzinfo=VN), 20
    )
    spans = rules.generate_slots([rule], [leave, extra], MONDAY, MONDAY, VN, LONG_AGO)
    assert [s.starts_at.astimezone(VN).strftime("%H:%M") for s in spans] == [
        "08:00",
        "09:30",  # from the rule; the extra 09:30 and 09:50 slots overlap rule slots
        "10:10",
        "10:30",
    ]


def test_holiday_covering_a_day_leaves_it_empty() -> None:
    rule = WeeklyRule(weekday=0, start_time=time(8, 0), end_time=time(10, 0), slot_minutes=30)
    holiday = Window(datetime(2026, 12, 7, 0, 0, tzinfo=VN), datetime(2026, 12, 8, 0, 0, tzinfo=VN))
    assert rules.generate_slots([rule], [holiday], MONDAY, MONDAY, VN, LONG_AGO) == []


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (WeeklyRule(0, time(10), time(9), 30), "end_time"),
        (WeeklyRule(0, time(9), time(9, 20), 30), "slot_minutes"),
        (WeeklyRule(7, time(9), time(10), 30), "weekday"),
        (WeeklyRule(0, time(9), time(10), 30, date(2027, 1, 2), date(2027, 1, 1)), "valid_until"),
    ],
)
def test_bad_rules(rule: WeeklyRule, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.check_rule(rule)
    assert refused.value.problems[0].field == field


def test_rules_of_one_service_may_not_overlap() -> None:
    morning = WeeklyRule(1, time(8), time(11), 30)
    rules.check_rule_clashes(WeeklyRule(1, time(11), time(12), 30), [morning])
    rules.check_rule_clashes(WeeklyRule(2, time(9), time(10), 30), [morning])
    with pytest.raises(InvalidInput):
        rules.check_rule_clashes(WeeklyRule(1, time(10, 30), time(12), 30), [morning])


def test_regeneration_never_touches_taken_slots_and_reports_conflicts() -> None:
    def span(hour: int, minute: int = 0, length: int = 30) -> Span:
        start = utc(2026, 12, 7, hour, minute)
        return Span(start, start + timedelta(minutes=length))

    wanted = [span(1), span(2, 0, 20), span(3)]
    free = [span(1), span(2)]  # 2:00-2:30 has a new length now
    taken = [span(3), span(4)]  # 4:00 is booked but no longer in the rules
    plan = rules.plan_regeneration(wanted, free, taken)
    assert plan.add == [span(2, 0, 20)]
    assert plan.remove == [span(2)]
    assert plan.conflicts == [span(4)]
    overlapping = rules.plan_regeneration([span(4, 10)], [], [span(4)])
    assert overlapping.add == [] and overlapping.conflicts == [span(4)]


def test_overlap_is_half_open() -> None:
    assert not rules.overlaps(
        utc(2026, 1, 1, 1), utc(2026, 1, 1, 2), utc(2026, 1, 1, 2), utc(2026, 1, 1, 3)
    )
    assert rules.overlaps(
        utc(2026, 1, 1, 1), utc(2026, 1, 1, 2), utc(2026, 1, 1, 1, 59), utc(2026, 1, 1, 3)
    )


def test_extra_hours_inside_leave_are_kept() -> None:
    rule = WeeklyRule(weekday=0, start_time=time(8, 0), end_time=time(10, 0), slot_minutes=30)
    holiday = Window(datetime(2026, 12, 7, 0, 0, tzinfo=VN), datetime(2026, 12, 8, 0, 0, tzinfo=VN))
    evening = Window(
        datetime(2026, 12, 7, 19, 0, tzinfo=VN), datetime(2026, 12, 7, 20, 0, tzinfo=VN), 30
    )
    spans = rules.generate_slots([rule], [holiday, evening], MONDAY, MONDAY, VN, LONG_AGO)
    assert [s.starts_at.astimezone(VN).strftime("%H:%M") for s in spans] == ["19:00", "19:30"]
