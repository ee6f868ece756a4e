"""The versioned resource store: write a version (with its search values), read them back.

Writes run inside the unit of work that changed the domain (see ``writethrough``), on the
synchronous session, in batches. The head row is moved with a conditional UPDATE on the version
it was read at, so two writers of one resource cannot both win, and ``If-Match`` is enforced by
the database rather than by a check before the write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import READ_ONLY
from telehealth.db import Prepared, write_rows
from telehealth.errors import Conflict, PreconditionFailed
from telehealth.fhir.models import FhirResource, FhirResourceVersion, FhirSearchValue
from telehealth.fhir.search_params import extract_values
from telehealth.timeutil import utcnow

Resource = dict[str, Any]


@dataclass(frozen=True)
class PendingVersion:
    resource: Resource
    deleted: bool = False
    expected_version: int | None = None  # from If-Match


class StoredVersion(NamedTuple):
    """One version as stored; a plain tuple, made straight from a row (a page of fifty is
    built on every search, and a frozen dataclass's constructor cost three times as much)."""

    resource_type: str
    resource_id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    text: str

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(resource: Resource) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


def stored_text(resource: Resource, version: int, stamp: str) -> str:
    """The stored JSON of one version: the resource, then its ``meta`` (always last, so that
    the same content with another version's ``meta`` is the same text up to it)."""
    body = to_json({k: v for k, v in resource.items() if k != "meta"})
    return f'{body[:-1]},"meta":{{"versionId":"{version}","lastUpdated":"{stamp}"}}}}'


def write_versions(session: Session, pending: Sequence[PendingVersion]) -> list[StoredVersion]:
    """Add one version per pending resource that changed: head row, history row and search
    values, in a fixed number of statements whatever the count (a booking writes four
    resources). A resource whose content is what its current version holds (a room opening
    re-maps its Appointment, which may not change) gets no new version: the history lists
    changes, and subscribers hear of changes only. Returns the versions written."""
    if not pending:
        return []
    # One version per resource and transaction: a later state of the same resource wins.
    latest = {(p.resource["resourceType"], p.resource["id"]): p for p in pending}
    connection = session.connection()
    now = utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    stamp = instant(now)
    heads: dict[tuple[str, str], Any] = {}
    for chunk in _chunks(list(latest)):
        found = connection.execute(_READ_HEADS, {"keys": chunk})
        heads.update({(head.resource_type, head.resource_id): head for head in found})

    stored: list[StoredVersion] = []
    changed: list[PendingVersion] = []
    for key, item in latest.items():
        head = heads.get(key)
        current = None if head is None else head.version_id
        if item.expected_version is not None and current != item.expected_version:
            raise PreconditionFailed(
                f"{key[0]}/{key[1]} is at version {current}, not {item.expected_version}: "
                "reload it and apply your change again"
            )
        if (
            head is not None
            and head.deleted == item.deleted
            and stored_text(item.resource, head.version_id, instant(head.last_updated)) == head.text
        ):
            continue
        version = (current or 0) + 1
        text = stored_text(item.resource, version, stamp)
        stored.append(StoredVersion(key[0], key[1], version, now, item.deleted, text))
        changed.append(item)
    if not stored:
        return []
    rows = [
        {
            "resource_type": s.resource_type,
            "resource_id": s.resource_id,
            "version_id": s.version_id,
            "last_updated": s.last_updated,
            "deleted": s.deleted,
            "text": s.text,
        }
        for s in stored
    ]
    _move_heads(connection, rows)
    write_rows(connection, _VERSIONS, rows)
    _reindex(connection, changed, [(s.resource_type, s.resource_id) for s in stored], now)
    return stored


def _chunks(keys: list[tuple[str, str]], size: int = 500) -> list[list[tuple[str, str]]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


# Built once (executing a prepared statement skips most of its per-call Core work).
_HEADS: sa.Table = FhirResource.__table__  # type: ignore[attr-defined]
_SEARCH: sa.Table = FhirSearchValue.__table__  # type: ignore[attr-defined]
_KEYS: Any = sa.bindparam("keys", expanding=True)  # [(resource_type, resource_id), ...]
_READ_HEADS = sa.select(
    _HEADS.c.resource_type,
    _HEADS.c.resource_id,
    _HEADS.c.version_id,
    _HEADS.c.last_updated,
    _HEADS.c.deleted,
    _HEADS.c.text,
).where(sa.tuple_(_HEADS.c.resource_type, _HEADS.c.resource_id).in_(_KEYS))
_VERSIONS: sa.Table = FhirResourceVersion.__table__  # type: ignore[attr-defined]
_UNINDEX = sa.delete(_SEARCH).where(
    sa.tuple_(_SEARCH.c.resource_type, _SEARCH.c.resource_id).in_(_KEYS)
)


def _upsert_heads(dialect: Any) -> Any:
    """Insert new heads and move existing ones; a head moves only from the version it was
    read at (``version_id = new - 1``), and only the rows written come back."""
    insert = dialect.insert(_HEADS)
    return (
        insert.on_conflict_do_update(
            index_elements=["resource_type", "resource_id"],
            set_={
                "version_id": insert.excluded.version_id,
                "last_updated": insert.excluded.last_updated,
                "deleted": insert.excluded.deleted,
                "text": insert.excluded.text,
            },
            where=_HEADS.c.version_id == insert.excluded.version_id - 1,
        )
    ).returning(_HEADS.c.resource_type, _HEADS.c.resource_id)


_UPSERT_HEADS = {"postgresql": _upsert_heads(postgresql), "sqlite": _upsert_heads(sqlite)}


def _move_heads(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """All heads in one statement (several rows of one executemany are sent as one INSERT);
    a head that another writer moved first is not returned, and its writer gets 409."""
    result = connection.execute(_UPSERT_HEADS[connection.dialect.name], rows)
    moved = {(kind, rid) for kind, rid in result}
    for row in rows:
        if (row["resource_type"], row["resource_id"]) not in moved:
            raise Conflict(
                f"{row['resource_type']}/{row['resource_id']} was changed meanwhile; "
                "reload and retry"
            )


def _reindex(
    connection: sa.Connection,
    pending: Sequence[PendingVersion],
    keys: list[tuple[str, str]],
    now: datetime,
) -> None:
    for chunk in _chunks(keys):
        connection.execute(_UNINDEX, {"keys": chunk})
    values = [
        {
            "resource_type": key[0],
            "resource_id": key[1],
            "param": param,
            "system": system,
            "value": value,
            "last_updated": now,
        }
        for item, key in zip(pending, keys, strict=True)
        if not item.deleted
        for param, system, value in extract_values(item.resource)
    ]
    write_rows(connection, _SEARCH, values)


def columns(table: type[FhirResource] | type[FhirResourceVersion]) -> tuple[Any, ...]:
    """The columns of a stored version, selected as plain rows: no ORM objects on reads."""
    return (
        col(table.resource_type),
        col(table.resource_id),
        col(table.version_id),
        col(table.last_updated),
        col(table.deleted),
        col(table.text),
    )


def version_of(row: Any) -> StoredVersion:
    """A row of ``columns(...)``: a SQLAlchemy row or an asyncpg record, by position."""
    return StoredVersion._make(row)


def _one(table: type[FhirResource] | type[FhirResourceVersion], *, versioned: bool) -> Prepared:
    conditions = [
        col(table.resource_type) == sa.bindparam("resource_type"),
        col(table.resource_id) == sa.bindparam("resource_id"),
    ]
    if versioned:
        conditions.append(col(table.version_id) == sa.bindparam("version_id"))
    return Prepared(sa.select(*columns(table)).where(*conditions))


_CURRENT = _one(FhirResource, versioned=False)
_VERSION = _one(FhirResourceVersion, versioned=True)


async def prepared_rows(session: AsyncSession, prepared: Prepared, **params: Any) -> list[Any]:
    """Rows of a prepared statement: straight on the driver in a read (``audited_read``),
    within the session's transaction otherwise."""
    connection = session.info.get(READ_ONLY)
    if connection is not None:
        return await prepared.rows(connection, **params)
    return list((await session.exec(prepared.statement, params=params)).all())


async def read_current(
    session: AsyncSession, resource_type: str, resource_id: str
) -> StoredVersion | None:
    rows = await prepared_rows(
        session, _CURRENT, resource_type=resource_type, resource_id=resource_id
    )
    return version_of(rows[0]) if rows else None


async def read_version(
    session: AsyncSession, resource_type: str, resource_id: str, version_id: int
) -> StoredVersion | None:
    rows = await prepared_rows(
        session,
        _VERSION,
        resource_type=resource_type,
        resource_id=resource_id,
        version_id=version_id,
    )
    return version_of(rows[0]) if rows else None


async def read_many(
    session: AsyncSession, resource_type: str, resource_ids: Sequence[str]
) -> list[StoredVersion]:
    if not resource_ids:
        return []
    rows = await session.exec(
        select(*columns(FhirResource)).where(
            col(FhirResource.resource_type) == resource_type,
            col(FhirResource.resource_id).in_(resource_ids),
            col(FhirResource.deleted).is_(False),
        )
    )
    return [version_of(row) for row in rows.all()]


async def history(
    session: AsyncSession,
    resource_type: str,
    resource_id: str | None,
    *,
    since: datetime | None,
    count: int,
    offset: int,
) -> list[StoredVersion]:
    """Versions newest first: of one resource, or of every resource of a type."""
    statement = select(*columns(FhirResourceVersion)).where(
        col(FhirResourceVersion.resource_type) == resource_type
    )
    if resource_id is not None:
        statement = statement.where(col(FhirResourceVersion.resource_id) == resource_id)
    if since is not None:
        statement = statement.where(col(FhirResourceVersion.last_updated) >= since)
    statement = statement.order_by(
        col(FhirResourceVersion.last_updated).desc(),
        col(FhirResourceVersion.resource_id),
        col(FhirResourceVersion.version_id).desc(),
    )
    rows = await session.exec(statement.offset(offset).limit(count))
    return [version_of(row) for row in rows.all()]
