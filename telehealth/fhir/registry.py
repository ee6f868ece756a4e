"""Which FHIR resources each domain table becomes, and which rows a change also re-maps.

``MAPPINGS``: table -> its resources (a consult request is a ServiceRequest, a Task and, with
vital signs, an Observation; a specialist's role is a PractitionerRole and a Schedule).
``DEPENDENTS``: a row whose change alters another table's resource (a new attachment adds a
``supportingInfo`` to its ServiceRequest; an arrival in a video room starts the Encounter).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from telehealth.availability.models import Slot
from telehealth.consent.models import PatientConsent
from telehealth.consults.models import (
    Appointment,
    ConsultAttachment,
    ConsultConclusion,
    ConsultDiagnosis,
    ConsultRequest,
)
from telehealth.directory.models import PractitionerRole
from telehealth.fhir import mapping_consults as consults
from telehealth.fhir import mapping_record as record
from telehealth.fhir.mapping import DIRECTORY_MAPPINGS, ResourceMapping
from telehealth.fhir.mapping_consent import consent_resource
from telehealth.fhir.models import FhirSubscription
from telehealth.fhir.subscriptions import subscription_resource
from telehealth.rtc.models import (
    Recording,
    Room,
    RoomParticipant,
    SessionEvent,
    SessionEventKind,
)

Key = tuple[type[Any], uuid.UUID]

MAPPINGS: dict[type[Any], tuple[ResourceMapping, ...]] = {
    **DIRECTORY_MAPPINGS,
    PractitionerRole: (
        *DIRECTORY_MAPPINGS[PractitionerRole],
        ResourceMapping("Schedule", consults.schedule_resource),
    ),
    Slot: (ResourceMapping("Slot", consults.slot_resource),),
    Appointment: (ResourceMapping("Appointment", consults.appointment_resource),),
    Room: (ResourceMapping("Encounter", record.room_encounter),),
    ConsultRequest: (
        ResourceMapping("ServiceRequest", consults.service_request_resource),
        ResourceMapping("Task", consults.task_resource),
        ResourceMapping("Observation", consults.vital_signs_resource),
    ),
    ConsultAttachment: (
        ResourceMapping("DocumentReference", consults.document_reference_resource),
    ),
    ConsultConclusion: (
        ResourceMapping("Encounter", record.concluded_encounter),
        ResourceMapping("DocumentReference", record.consult_note_resource),
    ),
    ConsultDiagnosis: (ResourceMapping("Condition", record.condition_resource),),
    FhirSubscription: (ResourceMapping("Subscription", subscription_resource),),
    Recording: (ResourceMapping("DocumentReference", record.recording_resource),),
    PatientConsent: (ResourceMapping("Consent", consent_resource),),
}


def _record_of(conclusion: ConsultConclusion, session: Session) -> list[Key]:
    """A conclusion completes the Encounter (its room's), and gives the request's attachments
    and the session's recordings their encounter."""
    ids = session.execute(
        sa.select(col(ConsultAttachment.id)).where(
            col(ConsultAttachment.request_id) == conclusion.request_id
        )
    ).scalars()
    recordings = session.execute(
        sa.select(col(Recording.id))
        .join(Room, col(Room.id) == col(Recording.room_id))
        .where(col(Room.appointment_id) == conclusion.appointment_id)
    ).scalars()
    return [
        *_room_of(conclusion.appointment_id, session),
        *[(ConsultAttachment, i) for i in ids],
        *[(Recording, i) for i in recordings],
    ]


def _room_of(appointment_id: uuid.UUID, session: Session) -> list[Key]:
    rooms = session.execute(
        sa.select(col(Room.id)).where(col(Room.appointment_id) == appointment_id)
    ).scalars()
    return [(Room, i) for i in rooms]


def _session_change(event: SessionEvent, session: Session) -> list[Key]:
    """An arrival that (re)starts the session or a departure that leaves the room empty
    changes the Encounter: its status and period. Other events (mute, quality) do not."""
    if event.kind not in (
        SessionEventKind.JOIN,
        SessionEventKind.RECONNECT,
        SessionEventKind.LEAVE,
    ):
        return []
    connected = session.execute(
        sa.select(sa.func.count())
        .select_from(RoomParticipant)
        .where(
            col(RoomParticipant.room_id) == event.room_id,
            col(RoomParticipant.connection_id).is_not(None),
        )
    ).scalar_one()
    leaving = event.kind == SessionEventKind.LEAVE
    return [(Room, event.room_id)] if connected == (0 if leaving else 1) else []


DEPENDENTS: dict[type[Any], Callable[[Any, Session], list[Key]]] = {
    ConsultAttachment: lambda attachment, _: [(ConsultRequest, attachment.request_id)],
    Room: lambda room, _: [(Appointment, room.appointment_id)],
    Appointment: lambda appointment, session: _room_of(appointment.id, session),
    SessionEvent: _session_change,
    ConsultConclusion: _record_of,
}
