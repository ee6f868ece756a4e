"""Shared by the FHIR tests: tokens for system clients, and R4B validation of what we emit."""

from __future__ import annotations

from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class

from telehealth.auth.service import create_client
from telehealth.db import Database
from telehealth.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

FHIR_JSON = "application/fhir+json"
NATIONAL_ID = "http://fhir.ehealth.gov.vn/core/sid/national_id"
INSURANCE = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
PROVIDER_CODE = "http://fhir.ehealth.gov.vn/core/sid/provider-code"
WRITER_ID = "his-writer"
WRITER_SECRET = "writer-secret-123"


async def client_headers(
    client: httpx.AsyncClient,
    client_id: str = DEMO_CLIENT_ID,
    secret: str = DEMO_CLIENT_SECRET,
    scope: str | None = None,
) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        form["scope"] = scope
    response = await client.post("/api/auth/token", data=form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def add_writer_client(db: Database, scopes: str = "system/*.cruds") -> None:
    """A hospital system allowed to write patients (the demo one may only read)."""
    async with db.unit_of_work() as session:
        await create_client(
            session,
            None,
            client_id=WRITER_ID,
            name="HIS writer",
            scopes=scopes,
            secret=WRITER_SECRET,
        )


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource (a Bundle validates its entries too) is valid FHIR R4B."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def fhir_json(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    return valid(body)


def assert_outcome(response: httpx.Response, status: int, text: str | None = None) -> str:
    """An OperationOutcome with this status; returns its diagnostics."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    valid(body)
    diagnostics = " ".join(issue.get("diagnostics", "") for issue in body["issue"])
    if text is not None:
        assert text.lower() in diagnostics.lower(), diagnostics
    return diagnostics


def entries(bundle: dict[str, Any], mode: str = "match") -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == mode
    ]
