"""The record of a consult as FHIR R4B: Encounter (class VR, the session's real period, the
outcome in ``hospitalization.dischargeDisposition``), Condition per ICD-10 diagnosis, and the
consult note and the session's recordings as DocumentReferences."""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from telehealth.consults.models import (
    Appointment,
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
    practitioner_of_account,
    ref,
    specialty_concepts,
)
from telehealth.fhir.store import instant
from telehealth.rtc.models import Recording, Room

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


def encounter_resource(conclusion: ConsultConclusion, session: Session) -> Resource:
    request = session.get(ConsultRequest, conclusion.request_id)
    appointment = session.get(Appointment, conclusion.appointment_id)
    assert request is not None and appointment is not None
    role = session.get(PractitionerRole, appointment.practitioner_role_id)
    participants = [
        _participant("PPRF", "primary performer", ref("Practitioner", conclusion.practitioner_id))
    ]
    requester = practitioner_of_account(session, request.requester_id)
    if requester is not None:
        participants.append(_participant("REF", "referrer", requester))
    activity = str(request.activity_type)
    recommendation = str(conclusion.recommendation)
    period = drop_empty(
        {
            "start": instant(conclusion.session_started_at)
            if conclusion.session_started_at
            else None,
            "end": instant(conclusion.session_ended_at) if conclusion.session_ended_at else None,
        }
    )
    return drop_empty(
        {
            "resourceType": "Encounter",
            "id": str(conclusion.id),
            "status": "finished",
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
            "subject": ref("Patient", conclusion.patient_id),
            "basedOn": [ref("ServiceRequest", conclusion.request_id)],
            "participant": participants,
            "appointment": [ref("Appointment", conclusion.appointment_id)],
            "period": period,
            "diagnosis": [
                {
                    "condition": ref("Condition", d.id),
                    "use": {"coding": [{"system": DIAGNOSIS_ROLE, "code": "DD"}]},
                    "rank": d.rank,
                }
                for d in _diagnoses(session, conclusion.id)
            ],
            "hospitalization": {
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
            },
            "serviceProvider": ref("Organization", role.organization_id) if role else None,
        }
    )


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
            "encounter": ref("Encounter", diagnosis.conclusion_id),
            "recordedDate": instant(diagnosis.created_at),
            "recorder": ref("Practitioner", conclusion.practitioner_id) if conclusion else None,
        }
    )


def consult_note_resource(conclusion: ConsultConclusion, _session: Session) -> Resource:
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
            "encounter": [ref("Encounter", conclusion.id)],
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
    conclusions = session.execute(
        sa.select(col(ConsultConclusion.id)).where(
            col(ConsultConclusion.appointment_id) == appointment.id
        )
    ).scalars()
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
                            "size": recording.size_bytes,
                            "title": "Ghi hình hội chẩn",
                            "creation": instant(recording.started_at),
                        }
                    )
                }
            ],
            "context": drop_empty(
                {
                    "encounter": [ref("Encounter", c) for c in conclusions],
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
