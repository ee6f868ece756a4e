"""Domain rows -> FHIR R4B resources as plain dicts (the fast path; tests validate them).

Each mapped table has its ``ResourceMapping``s (one or more resources per row, e.g. a consult
request is a ServiceRequest and a Task) in ``registry.MAPPINGS``; the write-through hook calls
them whenever a row of that table changes. Mappers run inside the flush/commit of the unit of work,
on the synchronous ``Session``, so they may look up related rows with ``session.get``.
Adding a resource for a new table is one function and one registry entry (see docs/fhir.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from telehealth.directory.models import (
    Gender,
    Organization,
    Patient,
    Practitioner,
    PractitionerRole,
    Specialty,
)

Resource = dict[str, Any]

VN_SID = "http://fhir.ehealth.gov.vn/core/sid"
NATIONAL_ID = f"{VN_SID}/national_id"
INSURANCE_NUMBER = f"{VN_SID}/insurance_number"
PROVIDER_CODE = f"{VN_SID}/provider-code"
PRACTISING_CERTIFICATE = f"{VN_SID}/practising-certificate"
SNOMED = "http://snomed.info/sct"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
FACILITY_LEVEL = "http://telehealth.vn/fhir/CodeSystem/facility-level"
ADMIN_UNIT = "http://telehealth.vn/fhir/CodeSystem/vn-admin-unit"

_LEVEL_DISPLAY = {
    "central": "Tuyến trung ương",
    "provincial": "Tuyến tỉnh",
    "district": "Tuyến huyện",
    "commune": "Tuyến xã",
}


@dataclass(frozen=True)
class ResourceMapping:
    resource_type: str
    build: Callable[[Any, Session], Resource | None]  # None: no such resource for this row


def human_name(full_name: str) -> list[Resource]:
    """Vietnamese names put the family name first: 'Nguyễn Thị Ánh' -> family Nguyễn."""
    words = full_name.split()
    name: Resource = {"use": "official", "text": full_name}
    if words:
        name["family"] = words[0]
    if len(words) > 1:
        name["given"] = words[1:]
    return [name]


def _telecom(phone: str | None, email: str | None = None) -> list[Resource]:
    points = []
    if phone:
        points.append({"system": "phone", "value": phone, "use": "work"})
    if email:
        points.append({"system": "email", "value": email, "use": "work"})
    return points


def drop_empty(resource: Resource) -> Resource:
    return {key: value for key, value in resource.items() if value not in (None, [], {}, "")}


def organization_resource(org: Organization, _session: Session) -> Resource:
    level = str(org.level)
    return drop_empty(
        {
            "resourceType": "Organization",
            "id": str(org.id),
            "identifier": [{"use": "official", "system": PROVIDER_CODE, "value": org.moh_code}],
            "active": org.active,
            "type": [
                {
                    "coding": [
                        {
                            "system": ORGANIZATION_TYPE,
                            "code": "prov",
                            "display": "Healthcare Provider",
                        }
                    ]
                },
                {
                    "coding": [
                        {"system": FACILITY_LEVEL, "code": level, "display": _LEVEL_DISPLAY[level]}
                    ]
                },
            ],
            "name": org.name,
            "telecom": _telecom(org.phone),
            "address": [
                drop_empty({"text": org.address, "district": org.admin_unit_code, "country": "VN"})
            ],
            "partOf": {"reference": f"Organization/{org.parent_id}"} if org.parent_id else None,
        }
    )


def practitioner_resource(person: Practitioner, _session: Session) -> Resource:
    identifiers = (
        [{"use": "official", "system": PRACTISING_CERTIFICATE, "value": person.licence_number}]
        if person.licence_number
        else []
    )
    return drop_empty(
        {
            "resourceType": "Practitioner",
            "id": str(person.id),
            "identifier": identifiers,
            "active": person.active,
            "name": human_name(person.full_name),
            "telecom": _telecom(person.phone, person.email),
            "gender": str(person.gender),
        }
    )


def practitioner_role_resource(role: PractitionerRole, session: Session) -> Resource:
    specialty = session.get(Specialty, role.specialty_id) if role.specialty_id else None
    return drop_empty(
        {
            "resourceType": "PractitionerRole",
            "id": str(role.id),
            "active": role.active,
            "practitioner": {"reference": f"Practitioner/{role.practitioner_id}"},
            "organization": {"reference": f"Organization/{role.organization_id}"},
            "specialty": [specialty_concept(specialty)] if specialty else [],
            "healthcareService": [{"reference": f"HealthcareService/{specialty.id}"}]
            if specialty
            else [],
        }
    )


def specialty_concept(specialty: Specialty) -> Resource:
    return {
        "coding": [{"system": SNOMED, "code": specialty.code, "display": specialty.name_en}],
        "text": specialty.name_vi,
    }


def healthcare_service_resource(specialty: Specialty, _session: Session) -> Resource:
    """One remote-consult service per specialty, offered by the practitioners whose roles
    point at it (``PractitionerRole.healthcareService``)."""
    return {
        "resourceType": "HealthcareService",
        "id": str(specialty.id),
        "active": True,
        "type": [{"text": "Hội chẩn / tư vấn khám chữa bệnh từ xa"}],
        "specialty": [specialty_concept(specialty)],
        "name": f"Tư vấn từ xa {specialty.name_vi}",
        "comment": f"Remote consults: {specialty.name_en}",
        "appointmentRequired": True,
    }


def patient_resource(patient: Patient, _session: Session) -> Resource:
    identifiers = []
    if patient.national_id:
        identifiers.append({"use": "official", "system": NATIONAL_ID, "value": patient.national_id})
    if patient.insurance_number:
        identifiers.append(
            {"use": "secondary", "system": INSURANCE_NUMBER, "value": patient.insurance_number}
        )
    address = drop_empty(
        {
            "use": "home",
            "text": patient.address,
            "district": patient.admin_unit_code,
            "country": "VN",
        }
    )
    return drop_empty(
        {
            "resourceType": "Patient",
            "id": str(patient.id),
            "identifier": identifiers,
            "name": human_name(patient.full_name),
            "telecom": _telecom(patient.phone),
            "gender": str(patient.gender) if patient.gender else str(Gender.UNKNOWN),
            "birthDate": patient.birth_date.isoformat(),
            "address": [address] if len(address) > 2 else [],
            "managingOrganization": {"reference": f"Organization/{patient.organization_id}"},
        }
    )


DIRECTORY_MAPPINGS: dict[type[Any], tuple[ResourceMapping, ...]] = {
    Organization: (ResourceMapping("Organization", organization_resource),),
    Practitioner: (ResourceMapping("Practitioner", practitioner_resource),),
    PractitionerRole: (ResourceMapping("PractitionerRole", practitioner_role_resource),),
    Patient: (ResourceMapping("Patient", patient_resource),),
    Specialty: (ResourceMapping("HealthcareService", healthcare_service_resource),),
}
# The directory but patients: read by anyone signed in (clients by scope), never audited.
DIRECTORY_TYPES = frozenset(
    m.resource_type for mappings in DIRECTORY_MAPPINGS.values() for m in mappings
) - {"Patient"}
