"""The directory read cache (telehealth.fhir.cache) on a real PostgreSQL: what a commit, a
rollback, an overlapping read and a lost listener do to it. Across processes: tests/e2e."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlmodel import select

from telehealth.db import Database
from telehealth.directory.models import Organization
from telehealth.fhir.cache import LISTENER_NAME, ReadCache, current, read_cache
from telehealth.fhir.store import StoredVersion, read_current
from telehealth.fhir.writethrough import flush_versions
from telehealth.pubsub import asyncpg_dsn
from telehealth.settings import Settings


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def database_url(private_database_url: str) -> str:
    """A database of its own: the tests count the listeners connected to it."""
    return private_database_url


@pytest.fixture
async def cache(settings: Settings) -> AsyncIterator[ReadCache]:
    started = ReadCache(settings)
    await started.start()
    yield started
    await started.stop()


async def _an_organization(db: Database) -> uuid.UUID:
    async with db.unit_of_work() as session:
        org = (await session.exec(select(Organization).limit(1))).one()
        return org.id


async def _read(db: Database, cache: ReadCache, org_id: uuid.UUID) -> StoredVersion:
    async with db.unit_of_work() as session:
        found = await current(cache, session, "Organization", str(org_id))
    assert found is not None
    return found


async def _rename(db: Database, org_id: uuid.UUID, name: str, *, then_fail: bool = False) -> None:
    async with db.unit_of_work() as session:
        org = await session.get(Organization, org_id)
        assert org is not None
        org.name = name
        if then_fail:
            await flush_versions(session)  # the version is written and announced...
            raise RuntimeError("the use case failed")  # ...and rolled back


async def test_a_read_is_kept_and_a_commit_forgets_it(db: Database, cache: ReadCache) -> None:
    org_id = await _an_organization(db)
    first = await _read(db, cache, org_id)
    assert cache.get("Organization", str(org_id)) == first

    await _rename(db, org_id, "Trạm Y tế đổi tên")
    assert cache.get("Organization", str(org_id)) is None
    again = await _read(db, cache, org_id)
    assert again.version_id == first.version_id + 1
    assert "Trạm Y tế đổi tên" in again.text


async def test_a_rolled_back_change_leaves_the_stored_version(
    db: Database, cache: ReadCache
) -> None:
    org_id = await _an_organization(db)
    first = await _read(db, cache, org_id)
    with pytest.raises(RuntimeError, match="the use case failed"):
        await _rename(db, org_id, "Never saved", then_fail=True)
    assert cache.get("Organization", str(org_id)) == first  # nothing to forget
    again = await _read(db, cache, org_id)
    assert (again.version_id, again.text) == (first.version_id, first.text)


async def test_a_read_that_overlapped_a_change_is_not_kept(db: Database, cache: ReadCache) -> None:
    org_id = await _an_organization(db)
    generation = cache.generation
    async with db.unit_of_work() as session:
        before = await read_current(session, "Organization", str(org_id))
    assert before is not None
    await _rename(db, org_id, "Đổi trong lúc đọc")  # committed while the read was "in flight"
    cache.fill(before, generation)
    assert cache.get("Organization", str(org_id)) is None
    assert "Đổi trong lúc đọc" in (await _read(db, cache, org_id)).text


async def test_another_process_change_is_heard_through_postgresql(
    db: Database, cache: ReadCache, settings: Settings
) -> None:
    """A NOTIFY sent by another process (here: by hand, as its transaction would) empties the
    entries it names, and an everything-changed notice empties the cache."""
    org_id = await _an_organization(db)
    await _read(db, cache, org_id)
    connection = await asyncpg.connect(asyncpg_dsn(settings.resolved_database_url))
    try:
        await connection.execute("SELECT pg_notify('fhir_changed', $1)", f"Organization/{org_id}")
        for _ in range(200):
            if cache.get("Organization", str(org_id)) is None:
                break
            await asyncio.sleep(0.01)
        assert cache.get("Organization", str(org_id)) is None

        await _read(db, cache, org_id)
        assert len(cache) == 1
        await connection.execute("SELECT pg_notify('fhir_changed', '*')")
        for _ in range(200):
            if len(cache) == 0:
                break
            await asyncio.sleep(0.01)
        assert len(cache) == 0
    finally:
        await connection.close()


async def test_without_its_listener_the_cache_is_not_used(
    db: Database, cache: ReadCache, settings: Settings
) -> None:
    """Changes sent while the listener is down are lost: the cache stops serving at once,
    and comes back empty once the listener has reconnected."""
    org_id = await _an_organization(db)
    await _read(db, cache, org_id)
    assert cache.live
    admin = await asyncpg.connect(asyncpg_dsn(settings.resolved_database_url))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            LISTENER_NAME,
        )
        assert killed == 1
    finally:
        await admin.close()
    for _ in range(200):
        if not cache.live:
            break
        await asyncio.sleep(0.01)
    assert not cache.live
    assert cache.get("Organization", str(org_id)) is None
    stale = (await _read(db, cache, org_id))._replace(text="{}")
    cache.fill(stale, cache.generation)
    assert len(cache) == 0  # not filled while deaf

    for _ in range(100):  # the watchdog checks every second
        if cache.live:
            break
        await asyncio.sleep(0.1)
    assert cache.live
    await _read(db, cache, org_id)
    assert cache.get("Organization", str(org_id)) is not None


async def test_the_cache_keeps_at_most_its_size_and_drops_the_least_read(
    db: Database, settings: Settings
) -> None:
    small = ReadCache(settings.model_copy(update={"fhir_read_cache_size": 2}))
    await small.start()
    try:
        async with db.unit_of_work() as session:
            ids = [o.id for o in (await session.exec(select(Organization).limit(3))).all()]
        first = await _read(db, small, ids[0])
        await _read(db, small, ids[1])
        assert small.get("Organization", str(ids[0])) == first  # now the most recently read
        third = await _read(db, small, ids[2])
        assert len(small) == 2
        assert small.get("Organization", str(ids[1])) is None
        assert small.get("Organization", str(ids[0])) == first
        assert small.get("Organization", str(ids[2])) == third
    finally:
        await small.stop()


async def test_entries_expire(db: Database, settings: Settings) -> None:
    """The bound for a change made outside the service (SQL by hand), which no one announces."""
    moment = 1000.0  # the cache's clock, moved by the test
    brief = ReadCache(
        settings.model_copy(update={"fhir_read_cache_seconds": 30}), clock=lambda: moment
    )
    await brief.start()
    try:
        org_id = await _an_organization(db)
        await _read(db, brief, org_id)
        moment += 29
        assert brief.get("Organization", str(org_id)) is not None
        moment += 2
        assert brief.get("Organization", str(org_id)) is None
    finally:
        await brief.stop()


def test_no_cache_on_sqlite_or_when_its_size_is_zero(settings: Settings) -> None:
    sqlite = settings.model_copy(update={"database_url": "sqlite+aiosqlite:///x.db"})
    assert read_cache(sqlite) is None
    assert read_cache(settings.model_copy(update={"fhir_read_cache_size": 0})) is None
