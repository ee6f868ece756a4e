"""The search parameters the FHIR face supports, and how their values are taken from a resource.

Values are extracted when a version is written (``extract_values``) and stored in
``fhir_search_value``; ``search.py`` turns query parameters into range scans over them. The
CapabilityStatement is generated from this table, so it lists exactly what works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from telehealth.directory.identifiers import fold_name

Resource = dict[str, Any]
Kind = Literal["token", "string", "reference", "date"]
Extracted = Iterator[tuple[str, str]]  # (system, value)


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: Kind
    extract: Callable[[Resource], Extracted]
    documentation: str
    target: str | None = None  # the resource type a reference points to

    @property
    def systemless(self) -> bool:
        """Its values carry no code system: a resource has one entry per code, at most."""
        return isinstance(self.extract, _Plain)


def _identifiers(resource: Resource) -> Extracted:
    for identifier in resource.get("identifier", []):
        if identifier.get("value"):
            yield identifier.get("system", ""), identifier["value"]


def _codes(field: str) -> Callable[[Resource], Extracted]:
    def extract(resource: Resource) -> Extracted:
        for concept in resource.get(field, []):
            for coding in concept.get("coding", []):
                if coding.get("code"):
                    yield coding.get("system", ""), coding["code"]

    return extract


@dataclass(frozen=True)
class _Plain:
    """A field's own value as text (``status``, ``gender``, ``birthDate``): never a system."""

    field: str

    def __call__(self, resource: Resource) -> Extracted:
        value = resource.get(self.field)
        if value is not None:
            yield "", str(value).lower() if isinstance(value, bool) else str(value)


def _plain(field: str) -> Callable[[Resource], Extracted]:
    return _Plain(field)


def _reference(field: str) -> Callable[[Resource], Extracted]:
    def extract(resource: Resource) -> Extracted:
        reference = resource.get(field) or {}
        if reference.get("reference"):
            yield "", reference["reference"]

    return extract


def _name_words(texts: Callable[[Resource], list[str]]) -> Callable[[Resource], Extracted]:
    """Every word of every name, folded (no diacritics, lower case), once each."""

    def extract(resource: Resource) -> Extracted:
        words = {word for text in texts(resource) for word in fold_name(text).split()}
        for word in sorted(words):
            yield "", word[:200]

    return extract


def _human_names(resource: Resource) -> list[str]:
    texts = []
    for name in resource.get("name", []):
        texts.append(name.get("text", ""))
        texts.append(name.get("family", ""))
        texts.extend(name.get("given", []))
    return texts


def _organization_name(resource: Resource) -> list[str]:
    return [resource.get("name", ""), *resource.get("alias", [])]


_IDENTIFIER_DOC = "system|value; the system may be left out"
_NAME_DOC = "each word must start a word of the name; diacritics and case are ignored"

SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    "Patient": {
        p.name: p
        for p in (
            SearchParam(
                "identifier", "token", _identifiers, f"CCCD or BHYT number: {_IDENTIFIER_DOC}"
            ),
            SearchParam("name", "string", _name_words(_human_names), _NAME_DOC),
            SearchParam(
                "birthdate",
                "date",
                _plain("birthDate"),
                "date of birth, with prefixes eq ge gt le lt",
            ),
            SearchParam("gender", "token", _plain("gender"), "male | female | other | unknown"),
            SearchParam(
                "organization",
                "reference",
                _reference("managingOrganization"),
                "the facility that manages the patient",
                target="Organization",
            ),
        )
    },
    "Practitioner": {
        p.name: p
        for p in (
            SearchParam(
                "identifier", "token", _identifiers, f"practising certificate: {_IDENTIFIER_DOC}"
            ),
            SearchParam("name", "string", _name_words(_human_names), _NAME_DOC),
            SearchParam("active", "token", _plain("active"), "true | false"),
        )
    },
    "PractitionerRole": {
        p.name: p
        for p in (
            SearchParam(
                "practitioner",
                "reference",
                _reference("practitioner"),
                "the practitioner",
                target="Practitioner",
            ),
            SearchParam(
                "organization",
                "reference",
                _reference("organization"),
                "where they work",
                target="Organization",
            ),
            SearchParam(
                "specialty", "token", _codes("specialty"), "SNOMED CT practice setting code"
            ),
            SearchParam("active", "token", _plain("active"), "true | false"),
        )
    },
    "Organization": {
        p.name: p
        for p in (
            SearchParam(
                "identifier",
                "token",
                _identifiers,
                f"Ministry of Health facility code: {_IDENTIFIER_DOC}",
            ),
            SearchParam("name", "string", _name_words(_organization_name), _NAME_DOC),
            SearchParam("type", "token", _codes("type"), "organization type or facility level"),
            SearchParam(
                "partof",
                "reference",
                _reference("partOf"),
                "the facility above this one",
                target="Organization",
            ),
            SearchParam("active", "token", _plain("active"), "true | false"),
        )
    },
    "HealthcareService": {
        p.name: p
        for p in (
            SearchParam(
                "specialty", "token", _codes("specialty"), "SNOMED CT practice setting code"
            ),
            SearchParam("name", "string", _name_words(lambda r: [r.get("name", "")]), _NAME_DOC),
            SearchParam("active", "token", _plain("active"), "true | false"),
        )
    },
}


def _participants(target: str) -> Callable[[Resource], Extracted]:
    """``participant[].actor`` references, of one type (or of every type: ``target=""``)."""

    def extract(resource: Resource) -> Extracted:
        for participant in resource.get("participant", []):
            reference = (participant.get("actor") or {}).get("reference", "")
            if reference and reference.startswith(target):
                yield "", reference

    return extract


def _references(field: str) -> Callable[[Resource], Extracted]:
    def extract(resource: Resource) -> Extracted:
        for reference in resource.get(field, []):
            if reference.get("reference"):
                yield "", reference["reference"]

    return extract


def _code(field: str) -> Callable[[Resource], Extracted]:
    """A single CodeableConcept's codings."""

    def extract(resource: Resource) -> Extracted:
        for coding in (resource.get(field) or {}).get("coding", []):
            if coding.get("code"):
                yield coding.get("system", ""), coding["code"]

    return extract


def _coding(field: str) -> Callable[[Resource], Extracted]:
    """A single Coding (``Encounter.class``)."""

    def extract(resource: Resource) -> Extracted:
        coding = resource.get(field) or {}
        if coding.get("code"):
            yield coding.get("system", ""), coding["code"]

    return extract


def _period_start(resource: Resource) -> Extracted:
    start = (resource.get("period") or {}).get("start")
    if start:
        yield "", start


def _params(*params: SearchParam) -> dict[str, SearchParam]:
    return {p.name: p for p in params}


_DATE_DOC = "a UTC instant or date, with prefixes eq ge gt le lt; offsets are converted to UTC"
_PATIENT = "the patient"

SEARCH_PARAMS.update(
    {
        "Schedule": _params(
            SearchParam(
                "actor", "reference", _references("actor"), "the practitioner or their role"
            ),
            SearchParam("service-type", "token", _codes("serviceType"), "SNOMED CT specialty"),
            SearchParam("specialty", "token", _codes("specialty"), "SNOMED CT specialty"),
            SearchParam("active", "token", _plain("active"), "true | false"),
        ),
        "Slot": _params(
            SearchParam(
                "schedule", "reference", _reference("schedule"), "the Schedule", target="Schedule"
            ),
            SearchParam("status", "token", _plain("status"), "free | busy | busy-tentative"),
            SearchParam("start", "date", _plain("start"), _DATE_DOC),
            SearchParam("service-type", "token", _codes("serviceType"), "SNOMED CT specialty"),
            SearchParam("specialty", "token", _codes("specialty"), "SNOMED CT specialty"),
        ),
        "Appointment": _params(
            SearchParam(
                "patient", "reference", _participants("Patient/"), _PATIENT, target="Patient"
            ),
            SearchParam(
                "practitioner",
                "reference",
                _participants("Practitioner/"),
                "a practitioner taking part",
                target="Practitioner",
            ),
            SearchParam("actor", "reference", _participants(""), "any participant"),
            SearchParam("date", "date", _plain("start"), f"the start: {_DATE_DOC}"),
            SearchParam(
                "status", "token", _plain("status"), "booked | arrived | fulfilled | noshow | ..."
            ),
            SearchParam("service-type", "token", _codes("serviceType"), "SNOMED CT specialty"),
            SearchParam(
                "based-on",
                "reference",
                _references("basedOn"),
                "the consult request",
                target="ServiceRequest",
            ),
            SearchParam("identifier", "token", _identifiers, _IDENTIFIER_DOC),
            SearchParam("slot", "reference", _references("slot"), "the slot", target="Slot"),
        ),
        "ServiceRequest": _params(
            SearchParam("patient", "reference", _reference("subject"), _PATIENT, target="Patient"),
            SearchParam(
                "requester",
                "reference",
                _reference("requester"),
                "the requesting doctor",
                target="Practitioner",
            ),
            SearchParam("status", "token", _plain("status"), "draft | active | completed | ..."),
            SearchParam("priority", "token", _plain("priority"), "routine | urgent | stat"),
            SearchParam("category", "token", _codes("category"), "SNOMED 11429006 consultation"),
            SearchParam("code", "token", _code("code"), "Circular 49 activity type"),
            SearchParam("authored", "date", _plain("authoredOn"), _DATE_DOC),
        ),
        "Task": _params(
            SearchParam("owner", "reference", _reference("owner"), "who holds it now"),
            SearchParam("status", "token", _plain("status"), "requested | accepted | ..."),
            SearchParam("business-status", "token", _code("businessStatus"), "the consult state"),
            SearchParam("focus", "reference", _reference("focus"), "the consult request"),
            SearchParam("patient", "reference", _reference("for"), _PATIENT, target="Patient"),
            SearchParam("authored-on", "date", _plain("authoredOn"), _DATE_DOC),
        ),
        "Observation": _params(
            SearchParam("patient", "reference", _reference("subject"), _PATIENT, target="Patient"),
            SearchParam("category", "token", _codes("category"), "vital-signs"),
            SearchParam(
                "based-on",
                "reference",
                _references("basedOn"),
                "the consult request",
                target="ServiceRequest",
            ),
        ),
        "Encounter": _params(
            SearchParam("patient", "reference", _reference("subject"), _PATIENT, target="Patient"),
            SearchParam("date", "date", _period_start, f"when the session began: {_DATE_DOC}"),
            SearchParam("status", "token", _plain("status"), "finished"),
            SearchParam(
                "appointment",
                "reference",
                _references("appointment"),
                "the appointment",
                target="Appointment",
            ),
            SearchParam(
                "based-on",
                "reference",
                _references("basedOn"),
                "the consult request",
                target="ServiceRequest",
            ),
            SearchParam("class", "token", _coding("class"), "VR (virtual)"),
        ),
        "Condition": _params(
            SearchParam("patient", "reference", _reference("subject"), _PATIENT, target="Patient"),
            SearchParam(
                "encounter", "reference", _reference("encounter"), "the consult", target="Encounter"
            ),
            SearchParam("code", "token", _code("code"), "WHO ICD-10 code"),
            SearchParam("category", "token", _codes("category"), "encounter-diagnosis"),
        ),
        "Subscription": _params(
            SearchParam("status", "token", _plain("status"), "requested | active | error | off"),
            SearchParam(
                "criteria",
                "string",
                _name_words(lambda r: [r.get("criteria", "")]),
                "words of the criteria",
            ),
        ),
        "Consent": _params(
            SearchParam("patient", "reference", _reference("patient"), _PATIENT, target="Patient"),
            SearchParam("status", "token", _plain("status"), "active | inactive (withdrawn)"),
            SearchParam("scope", "token", _code("scope"), "treatment | patient-privacy"),
            SearchParam(
                "action",
                "token",
                lambda r: _codes("action")(r.get("provision") or {}),
                "use (remote consultation) | collect (recording) | disclose (record sharing)",
            ),
        ),
        "DocumentReference": _params(
            SearchParam("patient", "reference", _reference("subject"), _PATIENT, target="Patient"),
            SearchParam(
                "encounter",
                "reference",
                lambda r: _references("encounter")(r.get("context") or {}),
                "the consult's encounter",
                target="Encounter",
            ),
            SearchParam(
                "related",
                "reference",
                lambda r: _references("related")(r.get("context") or {}),
                "the consult request",
            ),
        ),
    }
)


def extract_values(resource: Resource) -> list[tuple[str, str, str]]:
    """(param, system, value) rows for every search parameter of the resource's type, each
    once (a search driven by one value then meets each resource once)."""
    params = SEARCH_PARAMS.get(resource["resourceType"], {})
    rows: dict[tuple[str, str, str], None] = {}
    for param in params.values():
        for system, value in param.extract(resource):
            rows[(param.name, system[:200], value[:200])] = None
    return list(rows)
