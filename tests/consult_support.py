"""Helpers for the consult and availability tests: publish availability, make requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

CARDIOLOGY = "394579002"
INTERNAL_MEDICINE = "419192003"


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def service_of(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """The (first) consult service of the logged-in specialist."""
    practitioner = (await me(client, headers))["practitioner_id"]
    roles = await client.get(
        "/api/practitioner-roles", params={"practitioner_id": practitioner}, headers=headers
    )
    assert roles.status_code == 200, roles.text
    role: dict[str, Any] = roles.json()[0]
    return role


async def publish_week(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    role_id: str,
    start: str = "08:00",
    end: str = "10:00",
    minutes: int = 30,
    weekdays: range = range(7),
) -> list[dict[str, Any]]:
    published = []
    for weekday in weekdays:
        response = await client.post(
            "/api/availability/rules",
            json={
                "practitioner_role_id": role_id,
                "weekday": weekday,
                "start_time": start,
                "end_time": end,
                "slot_minutes": minutes,
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        published.append(response.json())
    return published


async def slots(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get("/api/slots", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def own_patients(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/api/patients", params={"limit": 50}, headers=headers)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["items"]]


def request_body(patient_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": patient_id,
        "activity_type": "exam_treatment",
        "specialty_code": CARDIOLOGY,
        "priority": "routine",
        "reason": "Đau ngực khi gắng sức, cần hội chẩn tim mạch",
        "clinical_summary": "Nam 62 tuổi, THA 10 năm, đau ngực trái 2 ngày.",
        "diagnoses": ["I20.0", "i10"],
        "vital_signs": {"heart_rate": 96, "systolic_bp": 160, "diastolic_bp": 95, "spo2": 97},
    }
    body.update(changes)
    return body


async def consent_to(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    patient_id: str,
    *purposes: str,
    **how: Any,
) -> list[dict[str, Any]]:
    """Record the patient's consent to those of ``purposes`` not in force yet, as the doctor
    does before sending a request (electronic unless ``how`` says otherwise)."""
    listed = await client.get(f"/api/patients/{patient_id}/consents", headers=headers)
    assert listed.status_code == 200, listed.text
    active = {c["purpose"] for c in listed.json() if c["active"]}
    missing = [purpose for purpose in purposes if purpose not in active]
    if not missing:
        return []
    recorded = await client.post(
        f"/api/patients/{patient_id}/consents",
        json={"purposes": missing, "method": "electronic"} | how,
        headers=headers,
    )
    assert recorded.status_code == 201, recorded.text
    body: list[dict[str, Any]] = recorded.json()
    return body


async def new_request(
    client: httpx.AsyncClient, headers: dict[str, str], patient_id: str, **changes: Any
) -> dict[str, Any]:
    if changes.get("submit", True):
        await consent_to(client, headers, patient_id, "remote_consultation")
    response = await client.post(
        "/api/consults", json=request_body(patient_id, **changes), headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def accepted_request(
    client: httpx.AsyncClient,
    requester: dict[str, str],
    specialist: dict[str, str],
    patient_id: str,
    **changes: Any,
) -> dict[str, Any]:
    created = await new_request(client, requester, patient_id, **changes)
    accepted = await client.post(
        f"/api/consults/{created['id']}/accept", json={}, headers=specialist
    )
    assert accepted.status_code == 200, accepted.text
    body: dict[str, Any] = accepted.json()
    return body


def well_ahead(offered: list[dict[str, Any]], hours: int = 1) -> dict[str, Any]:
    """The first slot starting at least ``hours`` from now: its room is not open yet and its
    reminders (but the day-before one) are still to come, whatever the hour the tests run at."""
    soon = datetime.now(UTC) + timedelta(hours=hours)
    return next(s for s in offered if datetime.fromisoformat(s["starts_at"]) >= soon)


async def unconsenting_patient(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """A patient registered now by the doctor, who has recorded no consent yet."""
    response = await client.post(
        "/api/patients",
        json={"full_name": "Trần Văn Chưa Đồng Ý", "gender": "male", "birth_date": "1961-07-02"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    patient: str = response.json()["id"]
    return patient
