"""Access tokens refused before they expire: an account deactivated, given another role or a
new password stops working at once, in every process, not when its token runs out.

An access token is checked without the database (``auth.tokens``). What revokes it is a row:
``user_account.sessions_reset_at``, set in the transaction that makes the change
(``reset_sessions``), and announced through ``telehealth.notices``. Each process keeps
{account: reset time} for resets younger than one access-token lifetime (older ones cannot
matter: every token issued before them has expired), read at start and again whenever its
listener comes back (notices sent while it was away are lost); a token issued before its
account's reset is refused with 401.

Limits: on PostgreSQL another process refuses the token once the notice arrives
(milliseconds); while a listener is down, until it is back (it reconnects within a second or
so). On SQLite there is one service process: it hears its own changes; an account changed from
the CLI in another process is only seen at the service's next start.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import RefreshToken, UserAccount
from telehealth.db import Database
from telehealth.notices import CatchingUp, announce
from telehealth.settings import Settings
from telehealth.timeutil import utcnow

log = logging.getLogger("telehealth.auth.revocation")

CHANNEL = "sessions_reset"
LISTENER_NAME = "telehealth-sessions-listener"


async def reset_sessions(session: AsyncSession, user: UserAccount) -> None:
    """From now on (once this transaction commits) the account's access tokens are refused."""
    now = utcnow()
    user.sessions_reset_at = now
    await session.run_sync(announce, CHANNEL, f"{user.id} {now.timestamp()}")


async def end_sessions(session: AsyncSession, user: UserAccount) -> None:
    """Every session of the account ends: its access tokens are refused and its refresh
    tokens revoked, so that each device logs in again."""
    await reset_sessions(session, user)
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user.id)
        .where(col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


class SessionResets(CatchingUp):
    """This process's view of recent resets, by account."""

    def __init__(self, settings: Settings, db: Database) -> None:
        super().__init__(settings.resolved_database_url, CHANNEL, name=LISTENER_NAME)
        self._db = db
        self._lifetime_s = settings.access_token_ttl_s
        self._resets: dict[uuid.UUID, float] = {}

    def refuses(self, account_id: uuid.UUID, issued_at: float) -> bool:
        reset = self._resets.get(account_id)
        return reset is not None and issued_at < reset

    def hear(self, payload: str) -> None:
        account, _, moment = payload.partition(" ")
        try:
            self._note(uuid.UUID(account), float(moment))
        except ValueError:
            log.warning("sessions: ignored a malformed notice %r", payload)

    def _note(self, account_id: uuid.UUID, moment: float) -> None:
        self._resets[account_id] = max(moment, self._resets.get(account_id, 0.0))
        expired = time.time() - self._lifetime_s
        if len(self._resets) > 1000:
            self._resets = {a: m for a, m in self._resets.items() if m > expired}

    async def catch_up(self) -> None:
        since = utcnow() - timedelta(seconds=self._lifetime_s)
        async with self._db.unit_of_work() as session:
            rows = await session.exec(
                select(UserAccount.id, UserAccount.sessions_reset_at).where(
                    col(UserAccount.sessions_reset_at) > since
                )
            )
            for account_id, moment in rows.all():
                if moment is not None:
                    self._note(account_id, moment.timestamp())
