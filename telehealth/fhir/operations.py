"""OperationDefinitions of the scheduling operations, listed in the CapabilityStatement and
served at ``/fhir/OperationDefinition/{id}`` (Argonaut Scheduling / IHE ITI-115..117 style)."""

from __future__ import annotations

from typing import Any

Resource = dict[str, Any]
CANONICAL = "http://telehealth.vn/fhir/OperationDefinition"


def _parameter(name: str, use: str, kind: str, doc: str, maximum: str = "1") -> Resource:
    return {"name": name, "use": use, "min": 0, "max": maximum, "type": kind, "documentation": doc}


OPERATION_DEFINITIONS: dict[str, Resource] = {
    "Appointment-find": {
        "resourceType": "OperationDefinition",
        "id": "Appointment-find",
        "url": f"{CANONICAL}/Appointment-find",
        "name": "FindAppointments",
        "title": "Find free slots as proposed appointments",
        "status": "active",
        "kind": "operation",
        "code": "find",
        "resource": ["Appointment"],
        "system": False,
        "type": True,
        "instance": False,
        "affectsState": False,
        "description": "Free slots, earliest first, as Appointments with status 'proposed': "
        "those fitting a consult request (service-request), or of a specialty or practitioner.",
        "parameter": [
            _parameter("start", "in", "instant", "slots starting after this instant"),
            _parameter("end", "in", "instant", "slots starting before this instant"),
            _parameter("specialty", "in", "string", "SNOMED CT specialty code (system|code)"),
            _parameter("practitioner", "in", "string", "Practitioner/<id>"),
            _parameter("service-request", "in", "string", "ServiceRequest/<id> to fit"),
            _parameter("_count", "in", "integer", "at most this many (1..100, default 20)"),
            _parameter("return", "out", "Bundle", "searchset of proposed Appointments"),
        ],
    },
    "Appointment-book": {
        "resourceType": "OperationDefinition",
        "id": "Appointment-book",
        "url": f"{CANONICAL}/Appointment-book",
        "name": "BookAppointment",
        "title": "Book a proposed appointment",
        "status": "active",
        "kind": "operation",
        "code": "book",
        "resource": ["Appointment"],
        "system": False,
        "type": True,
        "instance": False,
        "affectsState": True,
        "description": "Books the Appointment's single slot for its basedOn ServiceRequest, "
        "atomically (the same booking as POST /api/appointments). 409 OperationOutcome when "
        "the slot was taken meanwhile; nothing is written then.",
        "parameter": [
            _parameter("appointment", "in", "Appointment", "as proposed by $find"),
            _parameter("return", "out", "Appointment", "the booked Appointment"),
        ],
    },
}
