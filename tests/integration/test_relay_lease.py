"""The relay lease of a room, on SQLite and PostgreSQL: one holder among racing processes, a
takeover only once the lease has expired, renewal and release by its holder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import select

from telehealth.db import Database
from telehealth.rtc.models import RelayLease
from telehealth.rtc.relay_lease import claim_relay, keep_leases
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.rtc_support import make_room


async def test_racing_processes_agree_on_one_relay_host(db: Database, settings: Settings) -> None:
    made = await make_room(db, settings)

    async def claim(owner: str) -> str:
        async with db.unit_of_work() as session:
            return await claim_relay(session, made.room_id, owner, 30)

    owners = [f"host-{n}:{1000 + n}:abc" for n in range(16)]
    hosts = await asyncio.gather(*(claim(owner) for owner in owners))
    assert len(set(hosts)) == 1 and hosts[0] in owners
    async with db.unit_of_work() as session:
        rows = (await session.exec(select(RelayLease))).all()
    assert [(row.room_id, row.owner) for row in rows] == [(made.room_id, hosts[0])]


async def test_the_lease_moves_only_once_expired_and_its_holder_releases_it(
    db: Database, settings: Settings
) -> None:
    """Every step says when it happens (seconds after the start) instead of sleeping."""
    made = await make_room(db, settings)
    start = utcnow()

    def at(seconds: float) -> Callable[[], datetime]:
        return lambda: start + timedelta(seconds=seconds)

    async with db.unit_of_work() as session:
        assert await claim_relay(session, made.room_id, "one:1:a", 0.5, at(0)) == "one:1:a"
    async with db.unit_of_work() as session:
        assert await claim_relay(session, made.room_id, "two:2:b", 0.5, at(0.1)) == "one:1:a"
        await keep_leases(session, "one:1:a", {made.room_id}, 0.5, at(0.3))  # renewed to 0.8
    async with db.unit_of_work() as session:  # past the first lease, within the renewed one
        assert await claim_relay(session, made.room_id, "two:2:b", 0.5, at(0.6)) == "one:1:a"
    async with db.unit_of_work() as session:  # one stopped renewing (it died)
        assert await claim_relay(session, made.room_id, "two:2:b", 0.5, at(0.9)) == "two:2:b"
        await keep_leases(session, "one:1:a", set(), 30, at(0.9))  # not one's any more: untouched
    async with db.unit_of_work() as session:
        assert await claim_relay(session, made.room_id, "three:3:c", 30, at(1.0)) == "two:2:b"
        await keep_leases(session, "two:2:b", set(), 30, at(1.0))  # two relays nothing there now
    async with db.unit_of_work() as session:
        assert await claim_relay(session, made.room_id, "three:3:c", 30, at(1.1)) == "three:3:c"
