"""FHIR use cases: read, vread, history and search of the stored view; Patient writes through
the directory service (the same rules, identifier checks and audit as /api).

Access follows ``telehealth.auth.access``: system clients by SMART scopes, people by role and
facility. Patients a caller may not know of are reported as not found.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import (
    check_directory_read,
    check_patient_access,
    patient_visibility,
    require_scope,
)
from telehealth.auth.principal import Caller
from telehealth.consults import service as consults
from telehealth.directory import service as directory
from telehealth.errors import (
    BadRequest,
    Gone,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from telehealth.fhir import cache, store
from telehealth.fhir.consent_access import (
    CONSENT_TYPES,
    check_consent_resource,
    restrict_consent_search,
)
from telehealth.fhir.consult_access import (
    AVAILABILITY_TYPES,
    CONSULT_TYPES,
    check_consult_resource,
    check_person_may_use,
    restrict_consult_search,
)
from telehealth.fhir.consult_input import consult_create
from telehealth.fhir.mapping import DIRECTORY_TYPES
from telehealth.fhir.patient_input import managing_organization, patient_create, patient_update
from telehealth.fhir.scheduling_ops import book_appointment
from telehealth.fhir.search import (
    SearchQuery,
    SearchResult,
    included_types,
    parse_search,
    restrict_references,
    run_search,
)
from telehealth.fhir.search_params import SEARCH_PARAMS
from telehealth.fhir.store import StoredVersion
from telehealth.fhir.subscriptions import create_subscription
from telehealth.fhir.writethrough import expect_version, flush_versions
from telehealth.jsondepth import check_depth
from telehealth.settings import Settings
from telehealth.timeutil import as_utc

Resource = dict[str, Any]
STORED_TYPES = frozenset(SEARCH_PARAMS)
WRITABLE_TYPES = frozenset({"Patient", "Appointment", "ServiceRequest", "Subscription"})
CREATE_ONLY_TYPES = frozenset({"Appointment", "ServiceRequest", "Subscription"})


@dataclass(frozen=True)
class WriteResult:
    version: StoredVersion
    created: bool
    headers: dict[str, str] = field(default_factory=dict)


def _check_type(resource_type: str) -> None:
    if resource_type not in STORED_TYPES:
        supported = ", ".join(sorted(STORED_TYPES | {"AuditEvent"}))
        raise NotFound(
            f"Resource type '{resource_type}' is not served here; supported: {supported}"
        )


def check_type_access(caller: Caller, resource_type: str, permission: str) -> None:
    """Scopes for clients; for people, the directory is open to everyone signed in and
    patients follow their facility. A type without a rule for people is refused, so a newly
    mapped clinical resource is closed until its rule is written here."""
    if resource_type == "Patient":
        patient_visibility(caller.principal, permission)
    elif caller.principal.kind == "client":
        require_scope(caller.principal, resource_type, permission)
    elif resource_type in DIRECTORY_TYPES | AVAILABILITY_TYPES:
        check_directory_read(caller.principal, resource_type)
    elif resource_type in CONSULT_TYPES | CONSENT_TYPES and permission in ("r", "s"):
        check_person_may_use(caller)
    else:
        raise PermissionDenied(f"{resource_type} is open to system clients only, for now")


def _patient_organization(version: StoredVersion) -> uuid.UUID:
    organization = managing_organization(json.loads(version.text))
    assert organization is not None, "every stored Patient names its organization"
    return organization


def _check_patient(caller: Caller, version: StoredVersion, permission: str) -> None:
    patient_id = uuid.UUID(version.resource_id)
    caller.note(
        "read" if permission == "r" else "update", "Patient", patient_id, patient_id=patient_id
    )
    check_patient_access(caller.principal, _patient_organization(version), permission)


async def _current(
    session: AsyncSession,
    caller: Caller,
    resource_type: str,
    resource_id: str,
    kept: cache.ReadCache | None = None,
) -> StoredVersion:
    """The current version (perhaps a tombstone), once the caller may know of it."""
    _check_type(resource_type)
    check_type_access(caller, resource_type, "r")
    current = await cache.current(kept, session, resource_type, resource_id)
    if current is None:
        if resource_type == "Patient":
            caller.note("read", "Patient", resource_id)
        raise NotFound(f"No {resource_type} with id {resource_id}, or not one you have access to")
    if resource_type == "Patient":
        # Access follows the current organization, whichever version is asked for.
        _check_patient(caller, current, "r")
    elif resource_type in CONSULT_TYPES:
        await check_consult_resource(session, caller, current)
    elif resource_type in CONSENT_TYPES:
        await check_consent_resource(session, caller, current)
    return current


def cached_read(
    kept: cache.ReadCache, caller: Caller, resource_type: str, resource_id: str
) -> StoredVersion | None:
    """A read answered from the process's cache, with no database connection at all; None
    when the resource is not there (read it with ``read``)."""
    if resource_type not in cache.CACHED_TYPES:
        return None
    check_type_access(caller, resource_type, "r")
    found = kept.get(resource_type, resource_id)
    if found is not None and found.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted; its history is kept")
    return found


async def read(
    session: AsyncSession,
    caller: Caller,
    resource_type: str,
    resource_id: str,
    version_id: int | None = None,
    kept: cache.ReadCache | None = None,
) -> StoredVersion:
    """A read (``kept``: the cache to read the current version from and fill) or a vread."""
    found = await _current(session, caller, resource_type, resource_id, kept)
    if version_id is not None:
        older = await store.read_version(session, resource_type, resource_id, version_id)
        if older is None:
            raise NotFound(f"{resource_type}/{resource_id} has no version {version_id}")
        found = older
    if found.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted; its history is kept")
    return found


async def history(
    session: AsyncSession,
    caller: Caller,
    resource_type: str,
    resource_id: str | None,
    params: Sequence[tuple[str, str]],
) -> tuple[list[StoredVersion], int, int]:
    """Versions newest first, with the page size and offset used."""
    _check_type(resource_type)
    if resource_id is None:
        if resource_type == "Patient" and not patient_visibility(caller.principal, "s").everyone:
            raise BadRequest(
                "Patient/_history is open to system clients only; read one patient's history"
            )
        if resource_type in CONSULT_TYPES | CONSENT_TYPES and caller.principal.kind != "client":
            raise BadRequest(
                f"{resource_type}/_history is open to system clients only; "
                "read one resource's history"
            )
        check_type_access(caller, resource_type, "s")
    else:
        await _current(session, caller, resource_type, resource_id)
    count, offset, since = 50, 0, None
    for key, value in params:
        if key == "_count":
            count = max(1, min(200, int(value))) if value.isdigit() else 50
        elif key == "_offset" and value.isdigit():
            offset = int(value)
        elif key == "_since":
            try:
                since = _instant(value)
            except ValueError as exc:
                raise BadRequest(f"_since: '{value}' is not an instant") from exc
        elif key not in ("_format", "_pretty"):
            raise BadRequest(f"Unknown _history parameter '{key}'; supported: _count, _since")
    versions = await store.history(
        session, resource_type, resource_id, since=since, count=count + 1, offset=offset
    )
    return versions, count, offset


def _instant(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _restrict_to_visible_patients(caller: Caller, query: SearchQuery) -> None:
    visibility = patient_visibility(caller.principal, "s")
    if not visibility.everyone:
        restrict_references(
            query, "organization", {f"Organization/{o}" for o in visibility.organization_ids}
        )


async def search(
    session: AsyncSession, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]]
) -> tuple[SearchQuery, SearchResult]:
    _check_type(resource_type)
    query = parse_search(resource_type, params)
    if resource_type == "Patient":
        caller.note("search", "Patient")
        _restrict_to_visible_patients(caller, query)
    check_type_access(caller, resource_type, "s")
    for included in included_types(query):
        check_type_access(caller, included, "r")
    if resource_type in CONSULT_TYPES:
        await restrict_consult_search(session, caller, query)
    elif resource_type in CONSENT_TYPES:
        await restrict_consent_search(session, caller, query, params)
    result = await run_search(session, query)
    if resource_type == "Patient":
        caller.notes[-1].detail = f"{len(result.matches)} shown"
    return query, result


async def _single_match(
    session: AsyncSession, caller: Caller, resource_type: str, criteria: Sequence[tuple[str, str]]
) -> StoredVersion | None:
    if not criteria:
        raise BadRequest("A conditional interaction needs search criteria")
    _, result = await search(session, caller, resource_type, [*criteria, ("_count", "2")])
    if len(result.matches) > 1:
        raise PreconditionFailed(
            f"The criteria match more than one {resource_type}; make them more specific"
        )
    return result.matches[0] if result.matches else None


def _check_writable(resource_type: str) -> None:
    _check_type(resource_type)
    if resource_type not in WRITABLE_TYPES:
        raise BadRequest(
            f"{resource_type} is read-only over FHIR; the directory is managed through /api"
        )


async def _written(session: AsyncSession, resource_type: str, resource_id: str) -> StoredVersion:
    await flush_versions(session)
    version = await store.read_current(session, resource_type, resource_id)
    assert version is not None
    return version


async def create(
    session: AsyncSession,
    caller: Caller,
    resource_type: str,
    resource: Resource,
    settings: Settings,
    if_none_exist: Sequence[tuple[str, str]] = (),
) -> WriteResult:
    """Create (``POST``); with criteria, only if nothing matches them (conditional create)."""
    _check_writable(resource_type)
    if if_none_exist:
        existing = await _single_match(session, caller, resource_type, if_none_exist)
        if existing is not None:
            return WriteResult(existing, created=False)
    if resource_type == "Appointment":
        return WriteResult(
            await book_appointment(session, caller, resource, settings), created=True
        )
    if resource_type == "ServiceRequest":
        request = await consults.create_request(session, caller, consult_create(resource), settings)
        return WriteResult(await _written(session, resource_type, str(request.id)), created=True)
    if resource_type == "Subscription":
        if settings is None:
            raise BadRequest("Create a Subscription with POST /fhir/Subscription")
        allowed = settings.webhook_allow_hosts
        subscription, secret = await create_subscription(session, caller, resource, allowed)
        version = await _written(session, "Subscription", str(subscription.id))
        return WriteResult(version, True, {"X-Telehealth-Webhook-Secret": secret})
    patient = await directory.register_patient(session, caller, patient_create(resource))
    return WriteResult(await _written(session, "Patient", str(patient.id)), created=True)


async def update(
    session: AsyncSession,
    caller: Caller,
    resource_type: str,
    resource_id: str,
    resource: Resource,
    if_match: int | None = None,
) -> WriteResult:
    """Replace a resource (``PUT``); ``If-Match`` makes it fail with 412 on a stale version."""
    _check_writable(resource_type)
    if resource_type in CREATE_ONLY_TYPES:
        raise BadRequest(
            f"A {resource_type} cannot be replaced over FHIR: an Appointment changes through "
            "its actions (/api/appointments/{id}/reschedule, cancel, ...); create anew instead"
        )
    if resource.get("id") not in (None, resource_id):
        raise BadRequest(f"The body's id {resource.get('id')} differs from the URL's {resource_id}")
    current = await store.read_current(session, resource_type, resource_id)
    if current is None or current.deleted:
        caller.note("update", "Patient", resource_id)
        raise NotFound(f"No {resource_type} with id {resource_id}; create it with POST")
    _check_patient(caller, current, "u")
    if if_match is not None:
        if current.version_id != if_match:
            raise PreconditionFailed(
                f"{resource_type}/{resource_id} is at version {current.version_id}, "
                f"not {if_match}: reload it and apply your change again"
            )
        expect_version(session, resource_type, resource_id, if_match)
    data = patient_update(resource)
    organization = managing_organization(resource)
    if organization is not None and organization != _patient_organization(current):
        raise InvalidInput.for_field(
            "Patient.managingOrganization", "moving a patient to another facility is not supported"
        )
    caller.notes.pop()  # the directory service notes the update itself
    await directory.update_patient(session, caller, uuid.UUID(resource_id), data)
    return WriteResult(await _written(session, resource_type, resource_id), created=False)


async def conditional_update(
    session: AsyncSession,
    caller: Caller,
    resource_type: str,
    criteria: Sequence[tuple[str, str]],
    resource: Resource,
    settings: Settings,
) -> WriteResult:
    _check_writable(resource_type)
    existing = await _single_match(session, caller, resource_type, criteria)
    if existing is None:
        return await create(session, caller, resource_type, resource, settings)
    return await update(session, caller, resource_type, existing.resource_id, resource)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


async def patch(
    session: AsyncSession,
    caller: Caller,
    resource_type: str,
    resource_id: str,
    changes: Resource,
    if_match: int | None = None,
) -> WriteResult:
    _check_writable(resource_type)
    current = await read(session, caller, resource_type, resource_id)
    caller.notes.pop()
    patched = merge_patch(json.loads(current.text), changes)
    patched.pop("meta", None)
    patched["id"] = resource_id
    return await update(session, caller, resource_type, resource_id, patched, if_match)


def decode_json(body: bytes) -> Resource:
    check_depth(body)
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest("The body must be a JSON object (a FHIR resource)")
    return value
