"""FHIR in, consults out: a ServiceRequest becomes the consults area's ``ConsultCreate`` (the same
rules as ``POST /api/consults``)."""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest

from telehealth.consults.schemas import ConsultCreate
from telehealth.errors import InvalidInput
from telehealth.fhir.mapping_consults import ACTIVITY_TYPE, PRIORITY, SNOMED
from telehealth.fhir.mapping_consults import ICD10 as ICD10_SYSTEM
from telehealth.fhir.patient_input import _schema, validate_resource

Resource = dict[str, Any]
_PRIORITY_IN = {fhir: ours for ours, fhir in PRIORITY.items()} | {"asap": "urgent"}


def _codes(concepts: list[Resource], system: str) -> list[str]:
    return [
        coding["code"]
        for concept in concepts
        for coding in concept.get("coding", [])
        if coding.get("system") == system and coding.get("code")
    ]


def _reference_id(reference: Resource | None, resource_type: str, field: str) -> uuid.UUID:
    text = (reference or {}).get("reference", "")
    try:
        if not text.startswith(f"{resource_type}/"):
            raise ValueError(text)
        return uuid.UUID(text.removeprefix(f"{resource_type}/"))
    except ValueError as exc:
        raise InvalidInput.for_field(field, f"give a {resource_type}/<id> reference") from exc


def consult_create(resource: Resource) -> ConsultCreate:
    """Our ServiceRequest shape read back: ``code`` the Circular 49 activity, ``performerType``
    the SNOMED specialty, ``performer`` an optional target hospital, ``reasonCode`` ICD-10,
    ``note`` [reason, clinical summary]; ``status`` draft keeps it a draft. Vital signs are
    sent through /api (a ServiceRequest only refers to Observations)."""
    validate_resource(ServiceRequest, resource)
    if resource.get("category") and "11429006" not in _codes(resource["category"], SNOMED):
        raise InvalidInput.for_field(
            "ServiceRequest.category", "a consult request has category SNOMED 11429006"
        )
    activities = _codes([resource.get("code") or {}], ACTIVITY_TYPE)
    specialties = _codes([resource.get("performerType") or {}], SNOMED)
    notes = [n.get("text", "") for n in resource.get("note", [])]
    performers = resource.get("performer", [])
    fields: dict[str, Any] = {
        "patient_id": _reference_id(resource.get("subject"), "Patient", "ServiceRequest.subject"),
        "activity_type": activities[0] if activities else None,
        "specialty_code": specialties[0] if specialties else None,
        "target_organization_id": _reference_id(
            performers[0], "Organization", "ServiceRequest.performer"
        )
        if performers
        else None,
        "priority": _PRIORITY_IN.get(resource.get("priority", "routine"), "bogus"),
        "reason": notes[0].removeprefix("Lý do: ") if notes else None,
        "clinical_summary": notes[1] if len(notes) > 1 else None,
        "diagnoses": _codes(resource.get("reasonCode", []), ICD10_SYSTEM),
        "submit": resource.get("status", "active") != "draft",
    }
    result: ConsultCreate = _schema(ConsultCreate, fields)
    return result
