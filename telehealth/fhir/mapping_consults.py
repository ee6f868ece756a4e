"""Consults and availability as FHIR R4B: Schedule, Slot, Appointment, ServiceRequest, Task,
Observation (vital signs) and DocumentReference (attachments).

Status values are translated to the R4 value sets here, once; the codes used are listed in
docs/fhir.md and checked by the tests (fhir.resources does not check required bindings).
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from telehealth.auth.models import UserAccount
from telehealth.availability.models import Slot
from telehealth.consults.models import (
    Appointment,
    ConsultAttachment,
    ConsultConclusion,
    ConsultRequest,
)
from telehealth.directory.models import PractitionerRole, Specialty
from telehealth.fhir.facts import UNKNOWN, known
from telehealth.fhir.mapping import drop_empty, specialty_concept
from telehealth.fhir.store import instant
from telehealth.rtc.models import Room

Resource = dict[str, Any]

TELEHEALTH_CS = "http://telehealth.vn/fhir/CodeSystem"
ACTIVITY_TYPE = f"{TELEHEALTH_CS}/consult-activity-type"
CONSULT_STATUS = f"{TELEHEALTH_CS}/consult-status"
VIRTUAL_SERVICE_TYPE = f"{TELEHEALTH_CS}/virtual-service-type"
APPOINTMENT_SID = "http://telehealth.vn/fhir/sid/appointment"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VIRTUAL_SERVICE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService"

ACTIVITY_DISPLAY = {
    "tele_advice": "Tư vấn từ xa",
    "exam_treatment": "Hội chẩn khám bệnh, chữa bệnh từ xa",
    "imaging": "Hội chẩn chẩn đoán hình ảnh từ xa",
    "pathology": "Hội chẩn giải phẫu bệnh từ xa",
    "surgery": "Hội chẩn phẫu thuật từ xa",
    "training": "Đào tạo, chuyển giao kỹ thuật từ xa",
}
SLOT_STATUS = {"free": "free", "held": "busy-tentative", "booked": "busy"}
APPOINTMENT_STATUS = {
    "booked": "booked",
    "in_progress": "arrived",
    "completed": "fulfilled",
    "no_show": "noshow",
    "cancelled": "cancelled",
}
REQUEST_STATUS = {
    "draft": "draft",
    "requested": "active",
    "accepted": "active",
    "scheduled": "active",
    "in_progress": "active",
    "completed": "completed",
    "declined": "on-hold",
    "cancelled": "revoked",
    "expired": "revoked",
}
TASK_STATUS = {
    "draft": "draft",
    "requested": "requested",
    "accepted": "accepted",
    "scheduled": "accepted",
    "in_progress": "in-progress",
    "completed": "completed",
    "declined": "rejected",
    "cancelled": "cancelled",
    "expired": "failed",
}
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
# name -> (LOINC code, display, UCUM unit)
VITAL_LOINC = {
    "heart_rate": ("8867-4", "Heart rate", "/min"),
    "systolic_bp": ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    "diastolic_bp": ("8462-4", "Diastolic blood pressure", "mm[Hg]"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min"),
    "temperature_c": ("8310-5", "Body temperature", "Cel"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "weight_kg": ("29463-7", "Body weight", "kg"),
    "height_cm": ("8302-2", "Body height", "cm"),
    "blood_glucose_mmol": ("15074-8", "Glucose [Moles/volume] in Blood", "mmol/L"),
}


def ref(resource_type: str, row_id: Any) -> Resource:
    return {"reference": f"{resource_type}/{row_id}"}


def specialty_concepts(session: Session, specialty_id: Any) -> list[Resource]:
    specialty = session.get(Specialty, specialty_id) if specialty_id else None
    return [specialty_concept(specialty)] if specialty else []


def practitioner_of_account(session: Session, account_id: Any) -> Resource | None:
    account = session.get(UserAccount, account_id)
    if account is None or account.practitioner_id is None:
        return None
    return ref("Practitioner", account.practitioner_id)


def schedule_resource(role: PractitionerRole, session: Session) -> Resource | None:
    """A specialist's availability for one service: the PractitionerRole's published rules."""
    if role.specialty_id is None:
        return None
    specialty = specialty_concepts(session, role.specialty_id)
    return drop_empty(
        {
            "resourceType": "Schedule",
            "id": str(role.id),
            "active": role.active,
            "serviceType": specialty,
            "specialty": specialty,
            "actor": [
                ref("Practitioner", role.practitioner_id),
                ref("PractitionerRole", role.id),
            ],
            "comment": "Lịch tư vấn từ xa (giờ Asia/Ho_Chi_Minh)",
        }
    )


def slot_resource(slot: Slot, session: Session) -> Resource:
    specialty = specialty_concepts(session, slot.specialty_id)
    return drop_empty(
        {
            "resourceType": "Slot",
            "id": str(slot.id),
            "schedule": ref("Schedule", slot.practitioner_role_id),
            "status": SLOT_STATUS[str(slot.status)],
            "start": instant(slot.starts_at),
            "end": instant(slot.ends_at),
            "serviceType": specialty,
            "specialty": specialty,
        }
    )


def room_of(session: Session, appointment_id: uuid.UUID) -> uuid.UUID | None:
    """The id of an appointment's video room (told by the use case that wrote it, if it did)."""
    room_id = known(session, ("room_of", appointment_id))
    if room_id is UNKNOWN:
        room_id = session.execute(
            sa.select(col(Room.id)).where(col(Room.appointment_id) == appointment_id)
        ).scalar_one_or_none()
    return cast(uuid.UUID | None, room_id)


def _virtual_service(session: Session, appointment: Appointment) -> list[Resource]:
    room_id = room_of(session, appointment.id)
    if room_id is None:
        return []
    return [
        {
            "url": VIRTUAL_SERVICE,
            "extension": [
                {
                    "url": "channelType",
                    "valueCoding": {
                        "system": VIRTUAL_SERVICE_TYPE,
                        "code": "webrtc",
                        "display": "Phòng hội chẩn video (WebRTC)",
                    },
                },
                {"url": "addressUrl", "valueUrl": f"/room/{room_id}"},
                {"url": "sessionKey", "valueString": str(room_id)},
            ],
        }
    ]


def appointment_resource(appointment: Appointment, session: Session) -> Resource:
    request = session.get(ConsultRequest, appointment.request_id)
    specialty = specialty_concepts(session, request.specialty_id if request else None)
    requester = practitioner_of_account(session, request.requester_id) if request else None
    participants = [
        {"actor": ref("Patient", appointment.patient_id), "status": "accepted"},
        {"actor": ref("Practitioner", appointment.practitioner_id), "status": "accepted"},
        {"actor": ref("PractitionerRole", appointment.practitioner_role_id), "status": "accepted"},
    ]
    if requester is not None:
        participants.append({"actor": requester, "status": "accepted"})
    status = APPOINTMENT_STATUS[str(appointment.status)]
    return drop_empty(
        {
            "resourceType": "Appointment",
            "id": str(appointment.id),
            "extension": _virtual_service(session, appointment),
            "identifier": [{"system": APPOINTMENT_SID, "value": str(appointment.id)}],
            "status": status,
            "cancelationReason": {"text": appointment.status_reason}
            if status in ("cancelled", "noshow") and appointment.status_reason
            else None,
            "serviceType": specialty,
            "specialty": specialty,
            "start": instant(appointment.starts_at),
            "end": instant(appointment.ends_at),
            "created": instant(appointment.created_at),
            "slot": [ref("Slot", appointment.slot_id)],
            "basedOn": [ref("ServiceRequest", appointment.request_id)],
            "participant": participants,
        }
    )


def _attachment_ids(session: Session, request: ConsultRequest) -> list[Any]:
    told = known(session, ("attachments_of", request.id))
    if told is not UNKNOWN:
        return list(told)
    return list(
        session.execute(
            sa.select(col(ConsultAttachment.id))
            .where(col(ConsultAttachment.request_id) == request.id)
            .order_by(col(ConsultAttachment.created_at))
        ).scalars()
    )


def service_request_resource(request: ConsultRequest, session: Session) -> Resource:
    activity = str(request.activity_type)
    supporting = [ref("Observation", request.id)] if request.vital_signs else []
    supporting += [ref("DocumentReference", i) for i in _attachment_ids(session, request)]
    performer = (
        [ref("Practitioner", request.assigned_practitioner_id)]
        if request.assigned_practitioner_id
        else [ref("Organization", request.target_organization_id)]
        if request.target_organization_id
        else []
    )
    return drop_empty(
        {
            "resourceType": "ServiceRequest",
            "id": str(request.id),
            "status": REQUEST_STATUS[str(request.status)],
            "intent": "order",
            "category": [
                {
                    "coding": [{"system": SNOMED, "code": "11429006", "display": "Consultation"}],
                    "text": "Hội chẩn từ xa",
                }
            ],
            "priority": PRIORITY[str(request.priority)],
            "code": {
                "coding": [
                    {
                        "system": ACTIVITY_TYPE,
                        "code": activity,
                        "display": ACTIVITY_DISPLAY[activity],
                    }
                ],
                "text": ACTIVITY_DISPLAY[activity],
            },
            "subject": ref("Patient", request.patient_id),
            "authoredOn": instant(request.submitted_at or request.created_at),
            "requester": practitioner_of_account(session, request.requester_id),
            "performerType": next(iter(specialty_concepts(session, request.specialty_id)), None),
            "performer": performer,
            "reasonCode": [
                {
                    "coding": [{"system": ICD10, "code": d["code"], "display": d.get("display")}],
                    "text": d.get("display") or d["code"],
                }
                for d in request.diagnoses
            ],
            "supportingInfo": supporting,
            "note": [{"text": f"Lý do: {request.reason}"}, {"text": request.clinical_summary}],
        }
    )


def task_resource(request: ConsultRequest, session: Session) -> Resource:
    """The request's lifecycle: who holds it now (owner) and where it stands."""
    status = str(request.status)
    owner = (
        ref("Practitioner", request.assigned_practitioner_id)
        if request.assigned_practitioner_id
        else ref("Organization", request.target_organization_id)
        if request.target_organization_id
        else None
    )
    return drop_empty(
        {
            "resourceType": "Task",
            "id": str(request.id),
            "basedOn": [ref("ServiceRequest", request.id)],
            "status": TASK_STATUS[status],
            "statusReason": {"text": request.status_reason} if request.status_reason else None,
            "businessStatus": {"coding": [{"system": CONSULT_STATUS, "code": status}]},
            "intent": "order",
            "priority": PRIORITY[str(request.priority)],
            "focus": ref("ServiceRequest", request.id),
            "for": ref("Patient", request.patient_id),
            "authoredOn": instant(request.created_at),
            "lastModified": instant(request.updated_at),
            "requester": practitioner_of_account(session, request.requester_id),
            "owner": owner,
        }
    )


def vital_signs_resource(request: ConsultRequest, _session: Session) -> Resource | None:
    """The vital signs sent with the request, as one vital-signs panel."""
    if not request.vital_signs:
        return None
    components = []
    for name, value in request.vital_signs.items():
        code, display, unit = VITAL_LOINC[name]
        components.append(
            {
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }
        )
    return {
        "resourceType": "Observation",
        "id": str(request.id),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": {
            "coding": [
                {
                    "system": LOINC,
                    "code": "85353-1",
                    "display": "Vital signs, weight, height, head circumference, oxygen "
                    "saturation and BMI panel",
                }
            ]
        },
        "subject": ref("Patient", request.patient_id),
        "basedOn": [ref("ServiceRequest", request.id)],
        "effectiveDateTime": instant(request.created_at),
        "component": components,
    }


def encounter_id(session: Session, appointment_id: uuid.UUID) -> uuid.UUID | None:
    """The id of an appointment's Encounter: its video room's, or for a consult concluded
    without a room, its conclusion's."""
    room_id = room_of(session, appointment_id)
    if room_id is not None:
        return room_id
    return session.execute(
        sa.select(col(ConsultConclusion.id)).where(
            col(ConsultConclusion.appointment_id) == appointment_id
        )
    ).scalar_one_or_none()


def _encounters(session: Session, request: ConsultRequest | None) -> list[Any]:
    """The Encounters of the request's concluded consults (an attachment belongs to them)."""
    if request is None:
        return []
    appointments = session.execute(
        sa.select(col(ConsultConclusion.appointment_id)).where(
            col(ConsultConclusion.request_id) == request.id
        )
    ).scalars()
    return [encounter_id(session, a) for a in appointments]


def document_reference_resource(attachment: ConsultAttachment, session: Session) -> Resource:
    request = session.get(ConsultRequest, attachment.request_id)
    return drop_empty(
        {
            "resourceType": "DocumentReference",
            "id": str(attachment.id),
            "status": "current",
            "type": {"text": "Tài liệu đính kèm yêu cầu hội chẩn"},
            "subject": ref("Patient", request.patient_id) if request else None,
            "date": instant(attachment.created_at),
            "content": [
                {
                    "attachment": {
                        "contentType": attachment.media_type,
                        "url": f"Binary/{attachment.id}",
                        "size": attachment.size,
                        "title": attachment.filename,
                        "creation": instant(attachment.created_at),
                    }
                }
            ],
            "context": drop_empty(
                {
                    "encounter": [ref("Encounter", i) for i in _encounters(session, request)],
                    "related": [ref("ServiceRequest", attachment.request_id)],
                }
            ),
        }
    )
