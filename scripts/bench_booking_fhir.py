"""The FHIR versions a booking writes, as bare asyncpg statements: the ceiling's share of the
write-through (``telehealth.fhir.writethrough``) in ``scripts/bench_booking``.

A booking changes four mapped rows: the new Appointment, its Slot, and the request (its
ServiceRequest and Task). Each gets a version: head row (insert or conditional move), history
row, and its search values replaced.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from telehealth.fhir.search_params import extract_values

FHIR_SQL = {
    "head": "SELECT version_id FROM fhir_resource WHERE resource_type = $1 AND resource_id = $2",
    "insert_head": "INSERT INTO fhir_resource (resource_type, resource_id, version_id, "
    "last_updated, deleted, text) VALUES ($1, $2, $3, $4, false, $5)",
    "move_head": "UPDATE fhir_resource SET version_id = $3, last_updated = $4, text = $5 "
    "WHERE resource_type = $1 AND resource_id = $2 AND version_id = $6",
    "version": "INSERT INTO fhir_resource_version (resource_type, resource_id, version_id, "
    "last_updated, deleted, text) VALUES ($1, $2, $3, $4, false, $5)",
    "unindex": "DELETE FROM fhir_search_value WHERE resource_type = $1 AND resource_id = $2",
    "index": "INSERT INTO fhir_search_value (resource_type, resource_id, param, system, value) "
    "VALUES ($1, $2, $3, $4, $5)",
}


def booking_resources(
    request_id: str, slot_id: str, appointment_id: str, patient_id: str, slot: Any
) -> list[dict[str, Any]]:
    """Resources shaped like the real mappings (similar size and search values)."""
    start, end = slot["starts_at"].isoformat(), slot["ends_at"].isoformat()
    practitioner = f"Practitioner/{slot['practitioner_id']}"
    patient = {"reference": f"Patient/{patient_id}"}
    return [
        {
            "resourceType": "Appointment",
            "id": appointment_id,
            "identifier": [
                {"system": "http://telehealth.vn/fhir/sid/appointment", "value": appointment_id}
            ],
            "status": "booked",
            "serviceType": [
                {"coding": [{"system": "http://snomed.info/sct", "code": "394579002"}]}
            ],
            "start": start,
            "end": end,
            "slot": [{"reference": f"Slot/{slot_id}"}],
            "basedOn": [{"reference": f"ServiceRequest/{request_id}"}],
            "participant": [
                {"actor": patient, "status": "accepted"},
                {"actor": {"reference": practitioner}, "status": "accepted"},
            ],
        },
        {
            "resourceType": "Slot",
            "id": slot_id,
            "schedule": {"reference": f"Schedule/{slot['practitioner_role_id']}"},
            "status": "busy",
            "start": start,
            "end": end,
        },
        {
            "resourceType": "ServiceRequest",
            "id": request_id,
            "status": "active",
            "intent": "order",
            "priority": "routine",
            "subject": patient,
            "performer": [{"reference": practitioner}],
            "note": [{"text": "Lý do: bench"}, {"text": "bench " * 40}],
        },
        {
            "resourceType": "Task",
            "id": request_id,
            "status": "accepted",
            "intent": "order",
            "focus": {"reference": f"ServiceRequest/{request_id}"},
            "for": patient,
            "owner": {"reference": practitioner},
        },
    ]


async def write_versions(
    connection: asyncpg.Connection, now: datetime, resources: list[dict[str, Any]]
) -> None:
    for resource in resources:
        key = (resource["resourceType"], resource["id"])
        current = await connection.fetchval(FHIR_SQL["head"], *key)
        version = (current or 0) + 1
        text = json.dumps(
            {**resource, "meta": {"versionId": str(version), "lastUpdated": now.isoformat()}},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        if current is None:
            await connection.execute(FHIR_SQL["insert_head"], *key, version, now, text)
        else:
            await connection.execute(FHIR_SQL["move_head"], *key, version, now, text, current)
        await connection.execute(FHIR_SQL["version"], *key, version, now, text)
        await connection.execute(FHIR_SQL["unindex"], *key)
        await connection.executemany(
            FHIR_SQL["index"],
            [(*key, param, system, value) for param, system, value in extract_values(resource)],
        )
