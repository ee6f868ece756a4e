"""Idle accounts (issue #13, level 3): a person's account unused for ``account_idle_days`` is
disabled by a daily job, and an administrator can enable it again.

"Used" is a login or a token refresh (``UserAccount.last_active_at``, written when tokens are
issued); enabling an account again counts as use, or the next run would disable it at once.
System clients are not people's accounts and are left alone. The last active administrator
is never disabled so: someone must be able to enable the others.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import Actor, append_audit, audit_row
from telehealth.auth.models import AuditOutcome, Role, UserAccount
from telehealth.settings import Settings
from telehealth.timers.handlers import TimerCall
from telehealth.timeutil import utcnow

JOB_NAME = "disable_idle_accounts"


async def _idle_accounts(session: AsyncSession, cutoff: datetime) -> list[uuid.UUID]:
    """The active accounts unused since ``cutoff``, less the last administrator standing."""
    active = await session.exec(
        select(UserAccount.id, UserAccount.role, UserAccount.last_active_at)
        .where(col(UserAccount.active).is_(True))
        .order_by(col(UserAccount.last_active_at).desc())
    )
    rows = [(account, role, used) for account, role, used in active.all() if used is not None]
    idle = [row for row in rows if row[2] < cutoff]
    administrators = [row for row in rows if row[1] == Role.ADMINISTRATOR]
    if administrators and all(row in idle for row in administrators):
        idle.remove(administrators[0])  # the most recently active one stays
    return [row[0] for row in idle]


async def disable_idle_accounts(session: AsyncSession, call: TimerCall, settings: Settings) -> None:
    """Daily: disable the idle accounts, one audit row each. Safe to run twice: an account
    is disabled only while still active and still idle."""
    now = utcnow()
    cutoff = now - timedelta(days=settings.account_idle_days)
    candidates = await _idle_accounts(session, cutoff)
    if not candidates:
        return
    disabled = await session.exec(
        update(UserAccount)
        .where(col(UserAccount.id).in_(candidates))
        .where(col(UserAccount.active).is_(True))
        .where(col(UserAccount.last_active_at) < cutoff)
        .values(active=False, updated_at=now)
        .returning(col(UserAccount.id), col(UserAccount.username))
    )
    job = Actor("system", None, f"daily.{JOB_NAME}")
    await append_audit(
        session,
        [
            audit_row(
                job,
                "disable",
                "UserAccount",
                str(account_id),
                AuditOutcome.SUCCESS,
                detail=f"{username}: unused for {settings.account_idle_days} days",
            )
            for account_id, username in disabled.all()
        ],
    )
