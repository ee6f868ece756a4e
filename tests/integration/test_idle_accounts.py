"""Idle accounts (issue #13, level 3): the daily job disables people's accounts unused for
``account_idle_days``, records it, and leaves recent ones, system clients and the last
administrator alone; an administrator enables an account again, and it stays enabled."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from telehealth.auth.models import AuditEvent, SystemClient, UserAccount
from telehealth.db import Database
from telehealth.settings import Settings
from telehealth.timers.service import schedule
from telehealth.timeutil import utcnow
from tests.handler_support import fire
from tests.helpers import assert_problem, sign_in

JOB = "daily.disable_idle_accounts"


async def _last_used(db: Database, days_ago: dict[str, float]) -> None:
    async with db.unit_of_work() as session:
        for username, days in days_ago.items():
            await session.exec(
                update(UserAccount)
                .where(col(UserAccount.username) == username)
                .values(last_active_at=utcnow() - timedelta(days=days))
            )


async def _run_the_daily_job(db: Database, settings: Settings) -> None:
    async with db.unit_of_work() as session:
        schedule(session, JOB, uuid.uuid4(), utcnow())
    assert len(await fire(db, settings, [JOB])) == 1


async def _active(db: Database) -> dict[str, bool]:
    async with db.unit_of_work() as session:
        rows = await session.exec(select(UserAccount.username, UserAccount.active))
        return dict(rows.all())


async def test_an_idle_account_is_disabled_and_a_recent_one_is_not(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await _last_used(db, {"bs.xa3": settings.account_idle_days + 1, "bs.xa4": 44})
    await _run_the_daily_job(db, settings)
    active = await _active(db)
    assert active["bs.xa3"] is False and active["bs.xa4"] is True
    assert_problem(
        await client.post(
            "/api/auth/login", json={"username": "bs.xa3", "password": "telehealth-demo-only"}
        ),
        401,
    )
    async with db.unit_of_work() as session:
        audit = (
            await session.exec(select(AuditEvent).where(col(AuditEvent.action) == "disable"))
        ).all()
        clients = (await session.exec(select(SystemClient.active))).all()
    assert [(a.actor_kind, a.detail) for a in audit] == [
        ("system", f"bs.xa3: unused for {settings.account_idle_days} days")
    ]
    assert all(clients)  # system clients are not people's accounts


async def test_an_enabled_account_can_log_in_and_is_not_disabled_again(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await _last_used(db, {"bs.xa5": 90})
    await _run_the_daily_job(db, settings)
    assert (await _active(db))["bs.xa5"] is False
    admin = await sign_in(client, "quantri")
    listed = (await client.get("/api/admin/accounts?limit=200", headers=admin)).json()
    account = next(a for a in listed if a["username"] == "bs.xa5")
    enabled = await client.patch(
        f"/api/admin/accounts/{account['id']}", json={"active": True}, headers=admin
    )
    assert enabled.status_code == 200, enabled.text
    await _run_the_daily_job(db, settings)
    assert (await _active(db))["bs.xa5"] is True
    await sign_in(client, "bs.xa5")


async def test_the_last_administrator_is_not_disabled(db: Database, settings: Settings) -> None:
    await _last_used(db, {"quantri": 400})
    await _run_the_daily_job(db, settings)
    assert (await _active(db))["quantri"] is True
