"""Who reads the FHIR view of consents: whoever may read the patient's record, as in /api
(the patient's facility's doctors, and through a consult its specialists and coordinators);
system clients by their SMART scopes (``system/Consent.rs``). Every read and search is audited
with the patient it concerns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.principal import Caller
from telehealth.consults.patient_access import readable_patient
from telehealth.errors import BadRequest, NotFound
from telehealth.fhir.search import SearchQuery
from telehealth.fhir.store import StoredVersion

CONSENT_TYPES = frozenset({"Consent"})


def _patient_id(reference: str) -> uuid.UUID:
    try:
        return uuid.UUID(reference.removeprefix("Patient/"))
    except ValueError as exc:
        raise BadRequest(f"patient: '{reference}' is not Patient/<id>") from exc


async def check_consent_resource(
    session: AsyncSession, caller: Caller, version: StoredVersion
) -> None:
    """Audit the read of a Consent and refuse it (404) unless its patient is readable."""
    patient_id = _patient_id(json.loads(version.text)["patient"]["reference"])
    caller.note("read", "Consent", version.resource_id, patient_id=patient_id)
    if caller.principal.kind == "client":
        return
    try:
        await readable_patient(session, caller, patient_id)
    except NotFound as exc:
        raise NotFound(
            f"No Consent with id {version.resource_id}, or not one you have access to"
        ) from exc


async def restrict_consent_search(
    session: AsyncSession, caller: Caller, query: SearchQuery, params: Sequence[tuple[str, str]]
) -> None:
    """Audit the search; people search one patient's consents (``Consent?patient=``), and
    find none of a patient they may not read."""
    patients = [value for key, value in params if key == "patient"]
    caller.note("search", "Consent")
    if len(patients) == 1 and "," not in patients[0]:
        caller.notes[-1].patient_id = _patient_id(patients[0])
    if caller.principal.kind == "client":
        return
    patient_id = caller.notes[-1].patient_id
    if patient_id is None:
        raise BadRequest("Search consents one patient at a time: Consent?patient=Patient/<id>")
    try:
        await readable_patient(session, caller, patient_id)
    except NotFound:
        query.empty = True
