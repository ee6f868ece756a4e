"""The record of a consult as FHIR R4B: Encounter (class VR, the session's real period, the
outcome in ``hospitalization.dischargeDisposition``), Condition per ICD-10 diagnosis, and the
consult note and the session's recordings as DocumentReferences."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from telehealth.consults.models import (
    Appointment,
    AppointmentStatus,
    ConsultConclusion,
    ConsultDiagnosis,
    ConsultRequest,
)
from telehealth.directory.models import PractitionerRole
from telehealth.fhir.mapping import drop_empty
from telehealth.fhir.mapping_consults import (
    ACTIVITY_DISPLAY,
    ACTIVITY_TYPE,
    ICD10,
    TELEHEALTH_CS,
    encounter_id,
    practitioner_of_account,
    ref,
    specialty_concepts,
)
from telehealth.fhir.store import instant
from telehealth.rtc.models import Recording, Room, RoomParticipant, RoomState, SessionEvent
from telehealth.rtc.rules import SessionSpan, session_span

Resource = dict[str, Any]

RECOMMENDATION = f"{TELEHEALTH_CS}/consult-recommendation"
RECOMMENDATION_DISPLAY = {
    "treat_locally": "Điều trị tại tuyến dưới / treat locally",
    "transfer": "Chuyển tuyến / transfer",
    "follow_up": "Hẹn hội chẩn lại / follow up",
}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
LOINC = "http://loinc.org"
_PRIORITY = {"routine": "R", "urgent": "UR", "emergency": "EM"}


def _participant(code: str, display: str, individual: Resource) -> Resource:
    return {
        "type": [{"coding": [{"system": PARTICIPATION, "code": code, "display": display}]}],
        "individual": individual,
    }


def _diagnoses(session: Session, conclusion_id: Any) -> list[ConsultDiagnosis]:
    return list(
        session.execute(
            sa.select(ConsultDiagnosis)
            .where(col(ConsultDiagnosis.conclusion_id) == conclusion_id)
            .order_by(col(ConsultDiagnosis.rank))
        ).scalars()
    )


def _session_span(session: Session, appointment: Appointment) -> tuple[Room | None, SessionSpan]:
    """The appointment's room and its session's real times, from the room's events."""
    room = session.execute(
        sa.select(Room).where(col(Room.appointment_id) == appointment.id)
    ).scalar_one_or_none()
    if room is None:
        return None, SessionSpan(None, None, frozenset())
    events = session.execute(
        sa.select(col(SessionEvent.kind), col(SessionEvent.at), col(SessionEvent.user_id))
        .where(col(SessionEvent.room_id) == room.id)
        .order_by(col(SessionEvent.at))
    ).all()
    connected = session.execute(
        sa.select(sa.func.count())
        .select_from(RoomParticipant)
        .where(
            col(RoomParticipant.room_id) == room.id,
            col(RoomParticipant.connection_id).is_not(None),
        )
    ).scalar_one()
    return room, session_span([(e[0], e[1], e[2]) for e in events], connected > 0)


def _conclusion_of(session: Session, appointment: Appointment) -> ConsultConclusion | None:
    return session.execute(
        sa.select(ConsultConclusion).where(col(ConsultConclusion.appointment_id) == appointment.id)
    ).scalar_one_or_none()


def room_encounter(room: Room, session: Session) -> Resource | None:
    """The Encounter of a consult with a video room (same id): it follows the room's session."""
    appointment = session.get(Appointment, room.appointment_id)
    return None if appointment is None else encounter_resource(appointment, session, room.id)


def concluded_encounter(conclusion: ConsultConclusion, session: Session) -> Resource | None:
    """The Encounter of a consult concluded without a video room (same id as the conclusion;
    with a room, ``room_encounter`` makes it)."""
    appointment = session.get(Appointment, conclusion.appointment_id)
    if appointment is None or encounter_id(session, appointment.id) != conclusion.id:
        return None
    return encounter_resource(appointment, session, conclusion.id)


def encounter_resource(
    appointment: Appointment, session: Session, resource_id: uuid.UUID
) -> Resource | None:
    """The consult's Encounter, from the moment its video session
    starts: ``in-progress`` with ``period.start`` at the first arrival in the room,
    ``finished`` with ``period.end`` when the last participant leaves or the room ends (a
    rejoin makes it ``in-progress`` again), then with the diagnoses and the outcome at the
    specialist's conclusion. None before the session starts or the consult is concluded."""
    room, span = _session_span(session, appointment)
    conclusion = _conclusion_of(session, appointment)
    if span.started_at is None and conclusion is None:
        return None
    request = session.get(ConsultRequest, appointment.request_id)
    assert request is not None
    role = session.get(PractitionerRole, appointment.practitioner_role_id)
    finished = (
        conclusion is not None
        or span.ended_at is not None
        or appointment.status == AppointmentStatus.COMPLETED
        or (room is not None and room.state == RoomState.ENDED)
    )
    start, end = span.started_at, span.ended_at
    if conclusion is not None and conclusion.session_started_at is not None:
        start, end = conclusion.session_started_at, conclusion.session_ended_at
    elif finished and start is not None and end is None:
        end = room.ended_at if room is not None and room.ended_at else None
    participants = [
        _participant("PPRF", "primary performer", ref("Practitioner", appointment.practitioner_id))
    ]
    requester = practitioner_of_account(session, request.requester_id)
    if requester is not None:
        participants.append(_participant("REF", "referrer", requester))
    activity = str(request.activity_type)
    return drop_empty(
        {
            "resourceType": "Encounter",
            "id": str(resource_id),
            "status": "finished" if finished else "in-progress",
            "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
            "type": [
                {
                    "coding": [
                        {
                            "system": ACTIVITY_TYPE,
                            "code": activity,
                            "display": ACTIVITY_DISPLAY[activity],
                        }
                    ]
                }
            ],
            "serviceType": next(iter(specialty_concepts(session, request.specialty_id)), None),
            "priority": {
                "coding": [{"system": ACT_PRIORITY, "code": _PRIORITY[str(request.priority)]}]
            },
            "subject": ref("Patient", appointment.patient_id),
            "basedOn": [ref("ServiceRequest", appointment.request_id)],
            "participant": participants,
            "appointment": [ref("Appointment", appointment.id)],
            "period": drop_empty(
                {
                    "start": instant(start) if start else None,
                    "end": instant(end) if start and end else None,
                }
            ),
            "diagnosis": [
                {
                    "condition": ref("Condition", d.id),
                    "use": {"coding": [{"system": DIAGNOSIS_ROLE, "code": "DD"}]},
                    "rank": d.rank,
                }
                for d in (_diagnoses(session, conclusion.id) if conclusion else [])
            ],
            "hospitalization": _outcome(conclusion) if conclusion else None,
            "serviceProvider": ref("Organization", role.organization_id) if role else None,
        }
    )


def _outcome(conclusion: ConsultConclusion) -> Resource:
    recommendation = str(conclusion.recommendation)
    return {
        "dischargeDisposition": {
            "coding": [
                {
                    "system": RECOMMENDATION,
                    "code": recommendation,
                    "display": RECOMMENDATION_DISPLAY[recommendation],
                }
            ],
            "text": RECOMMENDATION_DISPLAY[recommendation],
        }
    }


def condition_resource(diagnosis: ConsultDiagnosis, session: Session) -> Resource:
    conclusion = session.get(ConsultConclusion, diagnosis.conclusion_id)
    return drop_empty(
        {
            "resourceType": "Condition",
            "id": str(diagnosis.id),
            "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
            "verificationStatus": {
                "coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": CONDITION_CATEGORY,
                            "code": "encounter-diagnosis",
                            "display": "Encounter Diagnosis",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": ICD10, "code": diagnosis.code, "display": diagnosis.display}],
                "text": diagnosis.display,
            },
            "subject": ref("Patient", diagnosis.patient_id),
            "encounter": ref("Encounter", encounter_id(session, conclusion.appointment_id))
            if conclusion
            else None,
            "recordedDate": instant(diagnosis.created_at),
            "recorder": ref("Practitioner", conclusion.practitioner_id) if conclusion else None,
        }
    )


def consult_note_resource(conclusion: ConsultConclusion, session: Session) -> Resource:
    """The specialist's advice as a plain-text consult note."""
    recommendation = RECOMMENDATION_DISPLAY[str(conclusion.recommendation)]
    text = f"Kết luận / recommendation: {recommendation}\n\n{conclusion.advice}"
    return {
        "resourceType": "DocumentReference",
        "id": str(conclusion.id),
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
        "subject": ref("Patient", conclusion.patient_id),
        "date": instant(conclusion.created_at),
        "author": [ref("Practitioner", conclusion.practitioner_id)],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                    "title": "Kết luận hội chẩn",
                    "creation": instant(conclusion.created_at),
                }
            }
        ],
        "context": {
            "encounter": [ref("Encounter", encounter_id(session, conclusion.appointment_id))],
            "related": [ref("ServiceRequest", conclusion.request_id)],
        },
    }


def recording_resource(recording: Recording, session: Session) -> Resource | None:
    """A participant's recording of the consult's video session (Matroska, kept on the
    server); none for a room that belongs to no booked appointment."""
    room = session.get(Room, recording.room_id)
    appointment = session.get(Appointment, room.appointment_id) if room else None
    if appointment is None:
        return None
    author = practitioner_of_account(session, recording.user_id)
    return drop_empty(
        {
            "resourceType": "DocumentReference",
            "id": str(recording.id),
            "status": "current",
            "type": {"text": "Ghi hình buổi hội chẩn / consult recording"},
            "subject": ref("Patient", appointment.patient_id),
            "date": instant(recording.started_at),
            "author": [author] if author else [],
            "content": [
                {
                    "attachment": drop_empty(
                        {
                            "contentType": "video/x-matroska",
                            "url": f"Binary/{recording.id}",
                            "size": recording.size_bytes,
                            "title": "Ghi hình hội chẩn",
                            "creation": instant(recording.started_at),
                        }
                    )
                }
            ],
            "context": drop_empty(
                {
                    "encounter": [ref("Encounter", recording.room_id)],
                    "period": drop_empty(
                        {
                            "start": instant(recording.started_at),
                            "end": instant(recording.stopped_at) if recording.stopped_at else None,
                        }
                    ),
                    "related": [ref("ServiceRequest", appointment.request_id)],
                }
            ),
        }
    )
