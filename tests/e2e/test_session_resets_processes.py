"""Two `telehealth serve` processes on one PostgreSQL: an account deactivated through one is
refused by the other, and by a process started afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from telehealth.settings import Settings
from tests.e2e.conftest import ONE_AT_A_TIME
from tests.e2e.service_process import serve, two_processes
from tests.helpers import login

pytestmark = [pytest.mark.slow, ONE_AT_A_TIME]


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def test_a_deactivation_through_one_process_is_refused_by_every_process(
    settings: Settings, tmp_path: Path
) -> None:
    async with two_processes(settings, tmp_path) as (a, b):
        doctor = await login(a, "bs.xa1")
        me = await b.get("/api/auth/me", headers=doctor)  # a token from A, checked by B
        assert me.status_code == 200, me.text

        admin = await login(a, "quantri")
        off = await a.patch(
            f"/api/admin/accounts/{me.json()['id']}", json={"active": False}, headers=admin
        )
        assert off.status_code == 200, off.text
        assert (await a.get("/api/auth/me", headers=doctor)).status_code == 401
        for _ in range(100):  # B hears of it through PostgreSQL
            on_b = await b.get("/api/auth/me", headers=doctor)
            if on_b.status_code == 401:
                break
            await asyncio.sleep(0.05)
        assert on_b.status_code == 401, on_b.text
        assert (await b.get("/api/auth/me", headers=admin)).status_code == 200

    # A process started after the change reads it at start-up.
    async with (
        serve(settings, tmp_path / "c", {}) as (url_c, _),
        httpx.AsyncClient(base_url=url_c, timeout=30) as c,
    ):
        assert (await c.get("/api/auth/me", headers=doctor)).status_code == 401
        assert (await c.get("/api/auth/me", headers=admin)).status_code == 200
