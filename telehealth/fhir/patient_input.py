"""FHIR Patient -> the directory's input schemas, so FHIR writes obey the /api rules.

The body is first validated with fhir.resources (R4B); then only what the directory keeps is
taken: identifiers of the VN Core systems, the official name, gender, birth date, phone,
address text and the managing organization. Anything the service cannot keep is refused
rather than silently dropped where it would change meaning (unknown identifier systems).
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from telehealth.directory.schemas import PatientCreate, PatientUpdate
from telehealth.errors import FieldProblem, InvalidInput
from telehealth.fhir.mapping import INSURANCE_NUMBER, NATIONAL_ID

Resource = dict[str, Any]


def validate_resource(model: Any, resource: Resource) -> None:
    """Structure and types by fhir.resources; problems named by their FHIRPath-like location."""
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        problems = tuple(
            FieldProblem(".".join(str(p) for p in error["loc"]) or "resource", error["msg"])
            for error in exc.errors()[:10]
        )
        raise InvalidInput(
            "The resource is not valid FHIR R4: "
            + "; ".join(f"{p.field}: {p.message}" for p in problems),
            problems=problems,
        ) from exc


def _full_name(resource: Resource) -> str:
    names = resource.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if not name:
        raise InvalidInput.for_field("Patient.name", "give the patient's name")
    text = name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])])
    if not text.strip():
        raise InvalidInput.for_field("Patient.name", "give the patient's name")
    return text.strip()


def _identifiers(resource: Resource) -> dict[str, str | None]:
    found: dict[str, str | None] = {"national_id": None, "insurance_number": None}
    for index, identifier in enumerate(resource.get("identifier") or []):
        system = identifier.get("system")
        if system == NATIONAL_ID:
            found["national_id"] = identifier.get("value")
        elif system == INSURANCE_NUMBER:
            found["insurance_number"] = identifier.get("value")
        else:
            raise InvalidInput.for_field(
                f"Patient.identifier[{index}].system",
                f"use {NATIONAL_ID} (CCCD) or {INSURANCE_NUMBER} (BHYT), not {system!r}",
            )
    return found


def managing_organization(resource: Resource) -> uuid.UUID | None:
    reference = (resource.get("managingOrganization") or {}).get("reference")
    if not reference:
        return None
    kind, _, key = reference.rpartition("/")
    try:
        if not kind.endswith("Organization"):
            raise ValueError(reference)
        return uuid.UUID(key)
    except ValueError as exc:
        raise InvalidInput.for_field(
            "Patient.managingOrganization", "must reference Organization/<id>"
        ) from exc


def _fields(resource: Resource) -> dict[str, Any]:
    if resource.get("resourceType") != "Patient":
        raise InvalidInput.for_field("resourceType", "must be Patient")
    validate_resource(FhirPatient, resource)
    if not resource.get("birthDate"):
        raise InvalidInput.for_field("Patient.birthDate", "give the date of birth")
    phone = next(
        (t.get("value") for t in resource.get("telecom") or [] if t.get("system") == "phone"), None
    )
    address = next((a.get("text") for a in resource.get("address") or [] if a.get("text")), None)
    district = next(
        (a.get("district") for a in resource.get("address") or [] if a.get("district")), None
    )
    return {
        "full_name": _full_name(resource),
        "gender": resource.get("gender") or "unknown",
        "birth_date": resource["birthDate"],
        "phone": phone,
        "address": address,
        "admin_unit_code": district,
        **_identifiers(resource),
    }


def _schema(schema: Any, fields: dict[str, Any]) -> Any:
    try:
        return schema.model_validate(fields)
    except ValidationError as exc:
        problems = tuple(
            FieldProblem(".".join(str(p) for p in error["loc"]), error["msg"])
            for error in exc.errors()
        )
        raise InvalidInput(
            "; ".join(f"{p.field}: {p.message}" for p in problems), problems=problems
        ) from exc


def patient_create(resource: Resource) -> PatientCreate:
    fields = _fields(resource)
    fields["organization_id"] = managing_organization(resource)
    result: PatientCreate = _schema(PatientCreate, fields)
    return result


def patient_update(resource: Resource) -> PatientUpdate:
    """A PUT replaces the resource: what the body leaves out is cleared."""
    result: PatientUpdate = _schema(PatientUpdate, _fields(resource))
    return result
