"""Two `telehealth serve` processes on one PostgreSQL: a directory change made through one is
read through the other, although each keeps the directory in memory for FHIR reads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import httpx
import pytest

from telehealth.pubsub import asyncpg_dsn
from telehealth.settings import Settings
from tests.e2e.conftest import ONE_AT_A_TIME
from tests.e2e.fhir_support import client_headers, fhir_json
from tests.e2e.service_process import two_processes
from tests.helpers import login

pytestmark = [pytest.mark.slow, ONE_AT_A_TIME]


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def _organization(http: httpx.AsyncClient, headers: dict[str, str], org_id: str) -> dict:
    return fhir_json(await http.get(f"/fhir/Organization/{org_id}", headers=headers))


async def test_a_change_through_one_process_is_read_through_the_other(
    settings: Settings, tmp_path: Path
) -> None:
    async with two_processes(settings, tmp_path) as (a, b):
        system = await client_headers(b)
        found = fhir_json(
            await b.get("/fhir/Organization", params={"identifier": "82001"}, headers=system)
        )
        org_id = found["entry"][0]["resource"]["id"]
        before = await _organization(b, system, org_id)

        # Served from B's memory: a change behind the service's back (SQL by hand, which no
        # one announces) is not seen until the entry expires.
        connection = await asyncpg.connect(asyncpg_dsn(settings.resolved_database_url))
        try:
            edited = {**before, "name": "Sửa tay trong cơ sở dữ liệu"}
            await connection.execute(
                "UPDATE fhir_resource SET text = $1 "
                "WHERE resource_type = 'Organization' AND resource_id = $2",
                json.dumps(edited, ensure_ascii=False),
                org_id,
            )
        finally:
            await connection.close()
        assert (await _organization(b, system, org_id))["name"] == before["name"]

        # A change through the service (on A) reaches B through PostgreSQL.
        admin = await login(a, "quantri")
        changed = await a.patch(
            f"/api/organizations/{org_id}", json={"name": "Trung tâm Y tế đổi tên"}, headers=admin
        )
        assert changed.status_code == 200, changed.text
        on_a = await _organization(a, await client_headers(a), org_id)
        assert on_a["name"] == "Trung tâm Y tế đổi tên"  # the writer's own process: at once
        expected_version = str(int(before["meta"]["versionId"]) + 1)
        assert on_a["meta"]["versionId"] == expected_version
        for _ in range(100):
            on_b = await _organization(b, system, org_id)
            if on_b["meta"]["versionId"] == expected_version:
                break
            await asyncio.sleep(0.05)
        assert on_b == on_a

        # A hit is still checked against the caller's scopes.
        narrow = await client_headers(b, scope="system/Patient.rs")
        refused = await b.get(f"/fhir/Organization/{org_id}", headers=narrow)
        assert refused.status_code == 403, refused.text
        assert "system/Organization" in refused.text
