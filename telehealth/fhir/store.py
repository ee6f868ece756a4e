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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

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


@dataclass(frozen=True)
class StoredVersion:
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


def write_versions(session: Session, pending: Sequence[PendingVersion]) -> list[StoredVersion]:
    """Add one version per pending resource: head row, history row and search values, in a
    fixed number of statements whatever the count (a booking writes four resources)."""
    if not pending:
        return []
    # One version per resource and transaction: a later state of the same resource wins.
    latest = {(p.resource["resourceType"], p.resource["id"]): p for p in pending}
    keys, pending = list(latest), list(latest.values())
    connection = session.connection()
    now = utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    stamp = instant(now)
    heads: dict[tuple[str, str], int] = {}
    for chunk in _chunks(keys):
        found = connection.execute(
            sa.select(
                col(FhirResource.resource_type),
                col(FhirResource.resource_id),
                col(FhirResource.version_id),
            ).where(_keyed(FhirResource, chunk))
        )
        heads.update({(kind, rid): version for kind, rid, version in found})

    stored: list[StoredVersion] = []
    for item, key in zip(pending, keys, strict=True):
        current = heads.get(key)
        if item.expected_version is not None and current != item.expected_version:
            raise PreconditionFailed(
                f"{key[0]}/{key[1]} is at version {current}, not {item.expected_version}: "
                "reload it and apply your change again"
            )
        version = (current or 0) + 1
        resource = {**item.resource, "meta": {"versionId": str(version), "lastUpdated": stamp}}
        stored.append(StoredVersion(key[0], key[1], version, now, item.deleted, to_json(resource)))
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
    connection.execute(sa.insert(FhirResourceVersion), rows)
    _reindex(connection, pending, keys)
    return stored


def _chunks(keys: list[tuple[str, str]], size: int = 500) -> list[list[tuple[str, str]]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


def _keyed(table: type[FhirResource] | type[FhirSearchValue], keys: list[tuple[str, str]]) -> Any:
    """``(resource_type, resource_id) IN (...)``: exactly these resources."""
    return sa.tuple_(col(table.resource_type), col(table.resource_id)).in_(keys)


def _move_heads(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert new heads and move existing ones in one upsert. A head moves only from the
    version it was read at (``version_id = new - 1``), so two writers of one resource cannot
    both win: the loser's row is not returned, and it gets 409."""
    heads: sa.Table = FhirResource.__table__  # type: ignore[attr-defined]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(heads)
    table = heads.c
    moved: set[tuple[str, str]] = set()
    for start in range(0, len(rows), 500):
        statement = (
            insert.values(rows[start : start + 500])
            .on_conflict_do_update(
                index_elements=["resource_type", "resource_id"],
                set_={
                    "version_id": insert.excluded.version_id,
                    "last_updated": insert.excluded.last_updated,
                    "deleted": insert.excluded.deleted,
                    "text": insert.excluded.text,
                },
                where=table.version_id == insert.excluded.version_id - 1,
            )
            .returning(table.resource_type, table.resource_id)
        )
        moved.update((kind, rid) for kind, rid in connection.execute(statement))
    for row in rows:
        if (row["resource_type"], row["resource_id"]) not in moved:
            raise Conflict(
                f"{row['resource_type']}/{row['resource_id']} was changed meanwhile; "
                "reload and retry"
            )


def _reindex(
    connection: sa.Connection, pending: Sequence[PendingVersion], keys: list[tuple[str, str]]
) -> None:
    for chunk in _chunks(keys):
        connection.execute(sa.delete(FhirSearchValue).where(_keyed(FhirSearchValue, chunk)))
    values = [
        {
            "resource_type": key[0],
            "resource_id": key[1],
            "param": param,
            "system": system,
            "value": value,
        }
        for item, key in zip(pending, keys, strict=True)
        if not item.deleted
        for param, system, value in extract_values(item.resource)
    ]
    if values:
        connection.execute(sa.insert(FhirSearchValue), values)


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


def _stored(row: Any) -> StoredVersion:
    return StoredVersion(
        row.resource_type, row.resource_id, row.version_id, row.last_updated, row.deleted, row.text
    )


async def read_current(
    session: AsyncSession, resource_type: str, resource_id: str
) -> StoredVersion | None:
    row = (
        await session.exec(
            select(*columns(FhirResource)).where(
                col(FhirResource.resource_type) == resource_type,
                col(FhirResource.resource_id) == resource_id,
            )
        )
    ).first()
    return None if row is None else _stored(row)


async def read_version(
    session: AsyncSession, resource_type: str, resource_id: str, version_id: int
) -> StoredVersion | None:
    row = (
        await session.exec(
            select(*columns(FhirResourceVersion)).where(
                col(FhirResourceVersion.resource_type) == resource_type,
                col(FhirResourceVersion.resource_id) == resource_id,
                col(FhirResourceVersion.version_id) == version_id,
            )
        )
    ).first()
    return None if row is None else _stored(row)


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
    return [_stored(row) for row in rows.all()]


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
    return [_stored(row) for row in rows.all()]
