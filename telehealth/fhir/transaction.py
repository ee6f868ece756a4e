"""Batch and transaction Bundles: each entry is dispatched to the same use cases as the plain
REST interactions. A transaction runs in one unit of work (all or nothing, the first failing
entry's error for all); a batch gives each entry a unit of work of its own.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.principal import Caller
from telehealth.db import Database
from telehealth.errors import BadRequest, FieldProblem, TelehealthError
from telehealth.fhir import bundle, service
from telehealth.fhir.outcome import operation_outcome
from telehealth.fhir.store import StoredVersion, instant
from telehealth.settings import Settings

Resource = dict[str, Any]
MAX_ENTRIES = 500
_STATUS_TEXT = {200: "200 OK", 201: "201 Created"}


def _etag_number(value: str | None) -> int | None:
    if not value:
        return None
    digits = value.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise BadRequest(f"ifMatch '{value}' is not a version tag such as W/\"3\"")
    return int(digits)


def _version_entry(version: StoredVersion, status: int, base: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{version.resource_type}/{version.resource_id}",
        "response": {
            "status": _STATUS_TEXT.get(status, str(status)),
            "location": f"{version.resource_type}/{version.resource_id}/_history/{version.version_id}",
            "etag": version.etag,
            "lastModified": instant(version.last_updated),
        },
        "_text": version.text,
    }


async def _run_entry(
    session: AsyncSession, caller: Caller, entry: Resource, base: str, settings: Settings
) -> tuple[dict[str, Any], str | None]:
    """The response entry, and the new resource's reference (for urn:uuid fullUrls)."""
    request = entry.get("request") or {}
    method = str(request.get("method", "")).upper()
    url = urlsplit(str(request.get("url", "")).removeprefix(base + "/").lstrip("/"))
    parts = [p for p in url.path.split("/") if p]
    criteria = parse_qsl(url.query, keep_blank_values=True)
    if not parts:
        raise BadRequest("Each entry needs request.url such as Patient or Patient/<id>")
    resource_type = parts[0]
    if method == "GET":
        if len(parts) == 1:
            _, result = await service.search(session, caller, resource_type, criteria)
            text = bundle.searchset(base, result.matches, result.included, result.total, [])
            return {"response": {"status": "200 OK"}, "_text": text}, None
        version = await service.read(session, caller, resource_type, parts[1])
        return _version_entry(version, 200, base), None
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        raise BadRequest(f"The {method} entry for {url.path} needs a resource")
    if method == "POST" and len(parts) == 1:
        if_none_exist = parse_qsl(str(request.get("ifNoneExist") or ""), keep_blank_values=True)
        outcome = await service.create(
            session, caller, resource_type, resource, settings, if_none_exist
        )
        ref = f"{resource_type}/{outcome.version.resource_id}"
        return _version_entry(outcome.version, 201 if outcome.created else 200, base), ref
    if method == "PUT" and len(parts) == 2:
        if_match = _etag_number(request.get("ifMatch"))
        outcome = await service.update(session, caller, resource_type, parts[1], resource, if_match)
        return _version_entry(outcome.version, 200, base), None
    if method == "PUT" and len(parts) == 1:
        outcome = await service.conditional_update(
            session, caller, resource_type, criteria, resource, settings
        )
        ref = f"{resource_type}/{outcome.version.resource_id}"
        return _version_entry(outcome.version, 201 if outcome.created else 200, base), ref
    raise BadRequest(f"Entry {method} {url.path} is not supported in a Bundle")


def _entries(body: Resource, kind: str) -> list[Resource]:
    entries = body.get("entry") or []
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise BadRequest(f"A {kind} holds a list of at most {MAX_ENTRIES} entries")
    return entries


def _resolve(entry: Resource, references: dict[str, str]) -> Resource:
    """Replace urn:uuid references to resources created earlier in the same Bundle."""
    if not references:
        return entry
    text = json.dumps(entry, ensure_ascii=False)
    for full_url, reference in references.items():
        text = text.replace(f'"{full_url}"', f'"{reference}"')
    resolved: Resource = json.loads(text)
    return resolved


async def run_transaction(db: Database, caller: Caller, body: Resource, base: str) -> str:
    entries = _entries(body, "transaction")
    responses: list[dict[str, Any]] = []
    references: dict[str, str] = {}
    async with audited_unit_of_work(db, caller) as session:
        for index, raw in enumerate(entries):
            entry = _resolve(raw, references)
            try:
                response, created = await _run_entry(session, caller, entry, base, db.settings)
            except TelehealthError as exc:
                where = f"Bundle.entry[{index}]"
                exc.detail = f"{where}: {exc.detail}; nothing was saved"
                exc.problems = tuple(
                    FieldProblem(f"{where}.{p.field}", p.message) for p in exc.problems
                )
                raise
            if created and str(raw.get("fullUrl", "")).startswith("urn:"):
                references[raw["fullUrl"]] = created
            responses.append(response)
    return bundle.response_bundle("transaction-response", responses)


async def run_batch(db: Database, caller: Caller, body: Resource, base: str) -> str:
    responses: list[dict[str, Any]] = []
    for raw in _entries(body, "batch"):
        entry_caller = Caller(caller.principal, caller.ip, caller.user_agent, caller.request_id)
        try:
            async with audited_unit_of_work(db, entry_caller) as session:
                response, _ = await _run_entry(session, entry_caller, raw, base, db.settings)
        except TelehealthError as exc:
            outcome = operation_outcome(exc.status_code, exc.detail, exc.problems)
            response = {"response": {"status": str(exc.status_code), "outcome": outcome}}
        responses.append(response)
    return bundle.response_bundle("batch-response", responses)


async def run_bundle(db: Database, caller: Caller, body: Resource, base: str) -> str:
    if body.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base URL takes a Bundle of type transaction or batch")
    kind = body.get("type")
    if kind == "transaction":
        return await run_transaction(db, caller, body, base)
    if kind == "batch":
        return await run_batch(db, caller, body, base)
    raise BadRequest(f"Bundle.type must be transaction or batch, not {kind!r}")
