"""The consult state machine, priorities, timers and vital signs, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from telehealth.availability.models import Slot
from telehealth.consults import rules
from telehealth.consults.models import ConsultRequest, ConsultStatus, Priority
from telehealth.errors import InvalidInput, InvalidTransition

S = ConsultStatus
LEGAL = {
    ("submit", S.DRAFT): S.REQUESTED,
    ("accept", S.REQUESTED): S.ACCEPTED,
    ("assign", S.REQUESTED): S.ACCEPTED,
    ("assign", S.ACCEPTED): S.ACCEPTED,
    ("decline", S.REQUESTED): S.DECLINED,
    ("decline", S.ACCEPTED): S.DECLINED,
    ("requeue", S.DECLINED): S.REQUESTED,
    ("resubmit", S.DECLINED): S.REQUESTED,
    ("schedule", S.ACCEPTED): S.SCHEDULED,
    ("reschedule", S.SCHEDULED): S.SCHEDULED,
    ("unschedule", S.SCHEDULED): S.ACCEPTED,
    ("no_show", S.SCHEDULED): S.ACCEPTED,
    ("start", S.SCHEDULED): S.IN_PROGRESS,
    ("complete", S.SCHEDULED): S.COMPLETED,
    ("complete", S.IN_PROGRESS): S.COMPLETED,
    ("cancel", S.DRAFT): S.CANCELLED,
    ("cancel", S.REQUESTED): S.CANCELLED,
    ("cancel", S.ACCEPTED): S.CANCELLED,
    ("cancel", S.SCHEDULED): S.CANCELLED,
    ("cancel", S.DECLINED): S.CANCELLED,
    ("expire", S.REQUESTED): S.EXPIRED,
    ("expire", S.ACCEPTED): S.EXPIRED,
    ("escalate", S.REQUESTED): S.REQUESTED,
}
EVERY = [(action, state) for action in rules.TRANSITIONS for state in ConsultStatus]


def test_the_table_is_exactly_the_documented_machine() -> None:
    derived = {
        (action, source): target
        for action, (sources, target) in rules.TRANSITIONS.items()
        for source in sources
    }
    assert derived == LEGAL


@pytest.mark.parametrize(("action", "state"), [key for key in EVERY if key in LEGAL])
def test_legal_transition(action: str, state: ConsultStatus) -> None:
    assert rules.next_status(action, state, "lý do") == LEGAL[(action, state)]


@pytest.mark.parametrize(("action", "state"), [key for key in EVERY if key not in LEGAL])
def test_illegal_transition_is_a_conflict_naming_the_state(
    action: str, state: ConsultStatus
) -> None:
    with pytest.raises(InvalidTransition) as refused:
        rules.next_status(action, state, "lý do")
    assert state.value in refused.value.detail
    assert refused.value.status_code == 409


def test_final_states_allow_nothing() -> None:
    for state in rules.FINAL:
        assert not [a for a, (sources, _) in rules.TRANSITIONS.items() if state in sources]


@pytest.mark.parametrize("action", sorted(rules.REASON_REQUIRED))
def test_actions_that_need_a_reason(action: str) -> None:
    source = next(iter(rules.TRANSITIONS[action][0]))
    for blank in (None, "", "   "):
        with pytest.raises(InvalidInput):
            rules.next_status(action, source, blank)


def test_unknown_action_is_bad_input() -> None:
    with pytest.raises(InvalidInput):
        rules.next_status("approve", S.REQUESTED)


def test_escalation_deadlines_by_priority() -> None:
    submitted = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    deadlines = {"emergency": 600, "urgent": 3600, "routine": 86400}
    assert rules.escalation_due(Priority.EMERGENCY, submitted, deadlines) == submitted + timedelta(
        minutes=10
    )
    assert rules.escalation_due(Priority.ROUTINE, submitted, deadlines) == submitted + timedelta(
        days=1
    )
    assert sorted(Priority, key=rules.PRIORITY_RANK.__getitem__) == [
        Priority.EMERGENCY,
        Priority.URGENT,
        Priority.ROUTINE,
    ]


def test_appointment_timers() -> None:
    start = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    planned = rules.appointment_timers(start, now=start - timedelta(days=3))
    at = {"starts_at": start.isoformat()}
    assert [(t.kind, t.due_at, t.payload) for t in planned] == [
        ("appointment.reminder", start - timedelta(days=1), {"lead_minutes": 1440, **at}),
        ("appointment.reminder", start - timedelta(minutes=15), {"lead_minutes": 15, **at}),
        ("room.open", start - timedelta(minutes=10), at),
        ("appointment.no_show", start + timedelta(minutes=15), at),
    ]
    soon = rules.appointment_timers(start, now=start - timedelta(minutes=12))
    assert [t.kind for t in soon] == ["room.open", "appointment.no_show"]
    configured = rules.appointment_timers(
        start, start - timedelta(days=3), (60,), timedelta(minutes=20), timedelta(minutes=5)
    )
    assert [(t.kind, start - t.due_at) for t in configured] == [
        ("appointment.reminder", timedelta(minutes=60)),
        ("room.open", timedelta(minutes=20)),
        ("appointment.no_show", timedelta(minutes=-5)),
    ]


def test_escalation_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert rules.next_escalation([a, b], frozenset(), False) == rules.EscalationStep(
        "specialist", a
    )
    assert rules.next_escalation([a, b], frozenset({a}), False).role_id == b
    assert rules.next_escalation([a, b], frozenset({a, b}), False).kind == "coordinator"
    assert rules.next_escalation([a, b], frozenset({a, b}), True).kind == "expire"
    assert rules.next_escalation([], frozenset(), False).kind == "coordinator"


def test_vital_signs_in_plausible_ranges() -> None:
    ok = {"heart_rate": 110, "systolic_bp": 90, "diastolic_bp": 60, "temperature_c": 39.5}
    assert rules.check_vital_signs(ok) == ok
    for bad, field in (
        ({"heart_rate": 600}, "vital_signs.heart_rate"),
        ({"spo2": 130}, "vital_signs.spo2"),
        ({"temperature_c": 3.7}, "vital_signs.temperature_c"),
        ({"pulse": 80}, "vital_signs.pulse"),
        ({"systolic_bp": 80, "diastolic_bp": 120}, "vital_signs.diastolic_bp"),
    ):
        with pytest.raises(InvalidInput) as refused:
            rules.check_vital_signs(bad)
        assert refused.value.problems[0].field == field


def _fit_case(priority: Priority) -> tuple[ConsultRequest, Slot]:
    specialty, hospital, specialist = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    request = ConsultRequest(
        patient_id=uuid.uuid4(),
        requesting_organization_id=uuid.uuid4(),
        requester_id=uuid.uuid4(),
        activity_type="exam_treatment",
        specialty_id=specialty,
        target_organization_id=hospital,
        priority=priority,
        reason="x",
        assigned_practitioner_id=specialist,
    )
    now = datetime.now(UTC)
    slot = Slot(
        practitioner_role_id=uuid.uuid4(),
        practitioner_id=specialist,
        organization_id=hospital,
        specialty_id=specialty,
        starts_at=now,
        ends_at=now + timedelta(minutes=30),
    )
    return request, slot


def test_slot_fit_is_the_one_rule_for_booking_and_holding() -> None:
    request, slot = _fit_case(Priority.ROUTINE)
    assert rules.slot_fit(request, slot) == {}
    for change in ({"specialty_id": uuid.uuid4()}, {"organization_id": uuid.uuid4()}):
        with pytest.raises(InvalidInput, match="another specialty or hospital"):
            rules.slot_fit(request, slot.model_copy(update=change))
    other_specialist = slot.model_copy(update={"practitioner_id": uuid.uuid4()})
    with pytest.raises(InvalidInput, match="routine request"):
        rules.slot_fit(request, other_specialist)
    urgent, _ = _fit_case(Priority.URGENT)
    urgent.specialty_id, urgent.target_organization_id = slot.specialty_id, None
    reassignment = rules.slot_fit(urgent, other_specialist)
    assert reassignment["assigned_practitioner_id"] == other_specialist.practitioner_id
