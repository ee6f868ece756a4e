"""The FHIR versions a booking writes, as bare asyncpg statements: the ceiling's share of the
write-through (``telehealth.fhir.writethrough``) in ``scripts/bench_booking``.

A booking changes four mapped rows: the new Appointment, its Slot, and the request (its
ServiceRequest and Task). Each gets a version: head row (insert or conditional move), history
row, and its search values replaced; as in ``telehealth.fhir.store``, five statements for all
four: the heads read, one upsert of the heads (moved only from the version read), the history
rows, the old search values deleted, the new ones inserted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from telehealth.fhir.search_params import extract_values

FHIR_SQL = {
    "heads": "SELECT resource_type, resource_id, version_id FROM fhir_resource "
    "WHERE (resource_type, resource_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
    "move_heads": "INSERT INTO fhir_resource (resource_type, resource_id, version_id, "
    "last_updated, deleted, text) SELECT t, i, v, $4, false, x "
    "FROM unnest($1::text[], $2::text[], $3::int[], $5::text[]) AS h(t, i, v, x) "
    "ON CONFLICT (resource_type, resource_id) DO UPDATE SET version_id = excluded.version_id, "
    "last_updated = excluded.last_updated, deleted = excluded.deleted, text = excluded.text "
    "WHERE fhir_resource.version_id = excluded.version_id - 1 RETURNING resource_id",
    "version": "INSERT INTO fhir_resource_version (resource_type, resource_id, version_id, "
    "last_updated, deleted, text) SELECT t, i, v, $4, false, x "
    "FROM unnest($1::text[], $2::text[], $3::int[], $5::text[]) AS h(t, i, v, x)",
    "unindex": "DELETE FROM fhir_search_value WHERE (resource_type, resource_id) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[]))",
    "index": "INSERT INTO fhir_search_value (resource_type, resource_id, param, system, value, "
    "last_updated) SELECT t, i, p, s, v, $6 "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS x(t, i, p, s, v)",
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
    types = [r["resourceType"] for r in resources]
    ids = [r["id"] for r in resources]
    heads = {
        (row["resource_type"], row["resource_id"]): row["version_id"]
        for row in await connection.fetch(FHIR_SQL["heads"], types, ids)
    }
    versions = [heads.get((t, i), 0) + 1 for t, i in zip(types, ids, strict=True)]
    texts = [
        json.dumps(
            {**resource, "meta": {"versionId": str(version), "lastUpdated": now.isoformat()}},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for resource, version in zip(resources, versions, strict=True)
    ]
    moved = await connection.fetch(FHIR_SQL["move_heads"], types, ids, versions, now, texts)
    if len(moved) != len(resources):
        raise RuntimeError("a FHIR head moved meanwhile")
    await connection.execute(FHIR_SQL["version"], types, ids, versions, now, texts)
    await connection.execute(FHIR_SQL["unindex"], types, ids)
    values = [
        (resource["resourceType"], resource["id"], param, system, value)
        for resource in resources
        for param, system, value in extract_values(resource)
    ]
    await connection.execute(
        FHIR_SQL["index"], *(list(column) for column in zip(*values, strict=True)), now
    )
