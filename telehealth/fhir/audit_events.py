"""The audit log served as FHIR AuditEvent, straight from the ``audit_event`` table.

Audit rows are never changed, so each is version 1 for ever; there is no copy in the resource
store. Only administrators may read them (``auth.audit.search_audit`` decides).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_account_admin
from telehealth.auth.audit import AuditQuery, search_audit
from telehealth.auth.models import AuditEvent, AuditOutcome
from telehealth.auth.principal import Caller
from telehealth.errors import BadRequest, NotFound
from telehealth.fhir.search_params import SEARCH_PARAMS
from telehealth.fhir.store import instant
from telehealth.timeutil import as_utc

Resource = dict[str, Any]
_REST = "http://hl7.org/fhir/restful-interaction"
_ACTIONS = {"create": "C", "read": "R", "search": "E", "update": "U", "delete": "D"}
_OUTCOMES = {AuditOutcome.SUCCESS: "0", AuditOutcome.DENIED: "4", AuditOutcome.FAILED: "8"}
_INTERACTIONS = {"read": "read", "search": "search-type", "create": "create", "update": "update"}


def audit_event_resource(row: AuditEvent) -> Resource:
    subtype = (
        {"system": _REST, "code": _INTERACTIONS[row.action]}
        if row.action in _INTERACTIONS
        else {"system": "http://telehealth.vn/fhir/CodeSystem/audit-action", "code": row.action}
    )
    agent: Resource = {
        "type": {"text": "system client" if row.actor_kind == "client" else "user"},
        "who": {
            "identifier": {"value": row.actor_id or "unknown"},
            "display": row.actor_name or "",
        },
        "requestor": True,
    }
    if row.ip:
        agent["network"] = {"address": row.ip, "type": "2"}
    entities: list[Resource] = []
    target = f"{row.entity_type}/{row.entity_id}" if row.entity_id else row.entity_type
    if row.entity_type in SEARCH_PARAMS and row.entity_id:
        entities.append({"what": {"reference": target}})
    else:
        entities.append({"what": {"display": target}})
    if row.patient_id and row.entity_type != "Patient":
        entities.append({"what": {"reference": f"Patient/{row.patient_id}"}})
    resource: Resource = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "meta": {"versionId": "1", "lastUpdated": instant(row.recorded_at)},
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [subtype],
        "action": _ACTIONS.get(row.action, "E"),
        "recorded": instant(row.recorded_at),
        "outcome": _OUTCOMES[AuditOutcome(row.outcome)],
        "agent": [agent],
        "source": {"observer": {"display": "telehealth"}},
        "entity": entities,
    }
    if row.detail:
        resource["outcomeDesc"] = row.detail
    return resource


async def read_audit_event(session: AsyncSession, caller: Caller, event_id: str) -> Resource:
    check_account_admin(caller.principal)
    try:
        row = await session.get(AuditEvent, uuid.UUID(event_id))
    except ValueError:
        row = None
    if row is None:
        raise NotFound(f"No AuditEvent with id {event_id}")
    return audit_event_resource(row)


def _moment(text: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as exc:
        raise BadRequest(f"date: '{text}' is not a date or instant") from exc


async def search_audit_events(
    session: AsyncSession, caller: Caller, params: Sequence[tuple[str, str]]
) -> tuple[list[Resource], int, int]:
    """Search by patient, date (ge/lt), outcome; newest first. Returns page, count, offset."""
    fields: dict[str, Any] = {"limit": 50, "offset": 0}
    for key, value in params:
        if key == "patient":
            try:
                fields["patient_id"] = uuid.UUID(value.rpartition("/")[2])
            except ValueError as exc:
                raise BadRequest("patient must be Patient/<id>") from exc
        elif key == "date" and value[:2] in ("ge", "gt"):
            fields["since"] = _moment(value[2:])
        elif key == "date" and value[:2] in ("le", "lt"):
            fields["until"] = _moment(value[2:])
        elif key == "outcome":
            reverse = {code: outcome for outcome, code in _OUTCOMES.items()}
            if value not in reverse:
                raise BadRequest("outcome must be 0 (success), 4 (denied) or 8 (failed)")
            fields["outcome"] = reverse[value]
        elif key == "_count" and value.isdigit():
            fields["limit"] = max(1, min(200, int(value)))
        elif key == "_offset" and value.isdigit():
            fields["offset"] = int(value)
        elif key == "date":
            raise BadRequest("date needs a prefix: ge, gt, le or lt (e.g. date=ge2026-11-01)")
        elif key not in ("_format", "_pretty"):
            raise BadRequest(
                f"Unknown AuditEvent search parameter '{key}'; supported: patient, date, outcome"
            )
    limit = fields["limit"]
    fields["limit"] = limit + 1
    rows = await search_audit(session, caller, AuditQuery(**fields))
    return [audit_event_resource(row) for row in rows], limit, fields["offset"]
