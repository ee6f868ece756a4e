"""What happens when a unit of work commits, listed in one place: the listeners of the
journal (``telehealth.journal``) that the composition root (``create_app``, the CLI) wires on
its ``Database``. The domain only says what changed; this is where the rest hears it.

Before commit, in the same transaction (all or nothing with the change):
- the FHIR versions of the rows changed (``fhir.writethrough``), and with them the notices to
  the processes' FHIR read caches and the webhook notifications of matching FHIR
  Subscriptions (``fhir.subscriptions``), which are written from the versions.

After commit:
- open pages: everyone whose page shows a consult request that changed is told on their
  ``user.<id>`` channel (``/ws/updates``), whichever edge (API, web page, FHIR) made the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from telehealth.consults.watchers import watchers
from telehealth.db import Database
from telehealth.fhir.writethrough import backfill, install_write_through, write_before_commit
from telehealth.journal import AfterCommit, Journal, Listeners
from telehealth.migrate import upgrade
from telehealth.pubsub import user_channel
from telehealth.settings import Settings

# (event, channels), as ``ChannelsPlugin.publish``: one call reaches every channel named.
Publish = Callable[[Any, list[str]], None]


def tell_open_pages(db: Database, publish: Publish) -> AfterCommit:
    """Publish ``{"kind": what, "id": request id}`` to the watchers of each changed request."""

    async def tell(journal: Journal) -> None:
        changed = [c for c in journal.changes if c.entity == "ConsultRequest"]
        if not changed:
            return
        # Read on the autocommit connection: no BEGIN/COMMIT round trips for a read.
        async with db.read_only() as connection:
            told = [(c, await watchers(connection, c.entity_id)) for c in changed]
        for change, accounts in told:
            if accounts:
                event = {"kind": change.what, "id": str(change.entity_id)}
                publish(event, [user_channel(account) for account in accounts])

    return tell


def open_database(settings: Settings, publish: Publish | None = None) -> Database:
    """The service's ``Database`` with every listener wired; ``publish`` (the app's channels)
    where pages may be open, none for the CLI's one-off commands."""
    listeners = Listeners(
        before_commit=[write_before_commit], session_hooks=[install_write_through]
    )
    db = Database(settings, listeners)
    if publish is not None:
        listeners.after_commit.append(tell_open_pages(db, publish))
    return db


def upgrade_database(database_url: str) -> None:
    """Migrations to head, then the FHIR versions the write-through would have written for rows
    that have none (rows older than their FHIR mapping, or inserted by a migration's SQL, like
    the specialties). Blocking: call it outside the event loop."""
    upgrade(database_url)
    asyncio.run(_backfill(database_url))


async def _backfill(database_url: str) -> None:
    db = open_database(Settings(database_url=database_url))
    try:
        async with db.unit_of_work() as session:
            await backfill(session)
    finally:
        await db.dispose()
