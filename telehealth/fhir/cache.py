"""Each process's copy of the current directory resources, so that a FHIR read of an
Organization, Practitioner, PractitionerRole or HealthcareService costs no database round trip.

Why these four: integrators read the directory all the time and it changes rarely (through the
admin pages); who may read them is decided by type alone (any signed-in person, a client's
scope), so serving them from memory skips no per-resource check; and they are not patient data,
whose reads are audited. Patients, consult resources and availability (a Slot changes with
every booking) are always read from the database.

Freshness comes from the database, and the cache exists on PostgreSQL only:

- every transaction that writes a cached type also runs ``pg_notify('fhir_changed', keys)``
  (``announce_changes``, through ``telehealth.notices``), which PostgreSQL delivers to every
  process's listener when the transaction commits, and never if it rolls back;
- the writing process forgets the keys itself when its transaction commits, so a client reads
  its own change even before the notification arrives;
- a read that began before a notification arrived does not fill the cache (``generation``), so
  a version read from the database just before a change cannot outlive it;
- while the listener is down the cache is neither read nor filled, and it is emptied when the
  listener comes back (notifications sent meanwhile are lost);
- every entry expires after ``fhir_read_cache_seconds``: the bound for a change made outside
  the service (SQL by hand, a restored dump).

Another process sees a change once PostgreSQL has delivered the notification (milliseconds): a
client that writes through one process and reads at once through another can, within that time,
get the previous version, as from any replica. On SQLite there is one service process, but the
CLI may write the same file, and nothing would tell the service: no cache there.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.fhir.mapping import DIRECTORY_TYPES
from telehealth.fhir.store import StoredVersion, read_current
from telehealth.notices import Subscription, announce
from telehealth.settings import Settings

CACHED_TYPES = DIRECTORY_TYPES
CHANNEL = "fhir_changed"
LISTENER_NAME = "telehealth-fhir-cache-listener"
_EVERYTHING = "*"  # a payload that empties the cache (a change too large to list)
_MOST_KEYS = 100  # ~55 bytes a key: well under NOTIFY's 8,000-byte limit

Key = tuple[str, str]


class ReadCache:
    """Current versions of cached types, least recently read dropped first."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._size = settings.fhir_read_cache_size
        self._seconds = settings.fhir_read_cache_seconds
        self._entries: OrderedDict[Key, tuple[float, StoredVersion]] = OrderedDict()
        self.generation = 0  # counts forgettings: a read that overlapped one does not fill
        self.live = False  # whether changes are being heard
        self._changes = Subscription(
            settings.resolved_database_url, CHANNEL, self, name=LISTENER_NAME
        )

    async def start(self) -> None:
        await self._changes.start()

    async def stop(self) -> None:
        await self._changes.stop()

    def get(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        if not self.live:
            return None
        key = (resource_type, resource_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def fill(self, version: StoredVersion, generation: int) -> None:
        """Keep ``version``, read from the database since ``generation`` was current, unless
        something was forgotten meanwhile (it may be the older side of that change)."""
        if not self.live or generation != self.generation:
            return
        key = (version.resource_type, version.resource_id)
        self._entries[key] = (self._clock() + self._seconds, version)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, keys: Iterable[Key]) -> None:
        self.generation += 1
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def heard(self) -> None:
        self.clear()
        self.live = True

    def deaf(self) -> None:
        self.live = False
        self.clear()

    def hear(self, payload: str) -> None:
        if payload == _EVERYTHING:
            self.clear()
            return
        keys = []
        for text in payload.split():
            resource_type, _, resource_id = text.partition("/")
            keys.append((resource_type, resource_id))
        self.forget(keys)


def read_cache(settings: Settings) -> ReadCache | None:
    """The application's cache: on PostgreSQL, unless its size is set to 0."""
    if settings.is_sqlite or settings.fhir_read_cache_size == 0:
        return None
    return ReadCache(settings)


async def current(
    cache: ReadCache | None, session: AsyncSession, resource_type: str, resource_id: str
) -> StoredVersion | None:
    """The current version, from the cache where it may be, else read (and kept)."""
    if cache is None or resource_type not in CACHED_TYPES:
        return await read_current(session, resource_type, resource_id)
    found = cache.get(resource_type, resource_id)
    if found is not None:
        return found
    generation = cache.generation
    found = await read_current(session, resource_type, resource_id)
    if found is not None:
        cache.fill(found, generation)
    return found


def announce_changes(session: Session, stored: Iterable[StoredVersion]) -> None:
    """Tell every process's cache, in this transaction, which cached resources it changes."""
    keys = sorted(
        {(s.resource_type, s.resource_id) for s in stored if s.resource_type in CACHED_TYPES}
    )
    if not keys:
        return
    payload = (
        " ".join(f"{kind}/{rid}" for kind, rid in keys) if len(keys) <= _MOST_KEYS else _EVERYTHING
    )
    announce(session, CHANNEL, payload)
