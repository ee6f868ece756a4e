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
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import READ_ONLY
from telehealth.db import Prepared
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
    """Add one version per pending resource: head row, history row and search values."""
    if not pending:
        return []
    connection = session.connection()
    now = utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    stamp = instant(now)
    keys = [(p.resource["resourceType"], p.resource["id"]) for p in pending]
    heads: dict[tuple[str, str], int] = {}
    for resource_type in {t for t, _ in keys}:
        ids = [i for t, i in keys if t == resource_type]
        for chunk in range(0, len(ids), 500):
            rows = connection.execute(
                sa.select(col(FhirResource.resource_id), col(FhirResource.version_id)).where(
                    col(FhirResource.resource_type) == resource_type,
                    col(FhirResource.resource_id).in_(ids[chunk : chunk + 500]),
                )
            )
            heads.update({(resource_type, rid): version for rid, version in rows})

    stored: list[StoredVersion] = []
    new_heads: list[dict[str, Any]] = []
    for item, key in zip(pending, keys, strict=True):
        current = heads.get(key)
        if item.expected_version is not None and current != item.expected_version:
            raise PreconditionFailed(
                f"{key[0]}/{key[1]} is at version {current}, not {item.expected_version}: "
                "reload it and apply your change again"
            )
        version = (current or 0) + 1
        resource = {**item.resource, "meta": {"versionId": str(version), "lastUpdated": stamp}}
        text = to_json(resource)
        row = {
            "resource_type": key[0],
            "resource_id": key[1],
            "version_id": version,
            "last_updated": now,
            "deleted": item.deleted,
            "text": text,
        }
        if current is None:
            new_heads.append(row)
        else:
            moved = connection.execute(
                sa.update(FhirResource)
                .where(
                    col(FhirResource.resource_type) == key[0],
                    col(FhirResource.resource_id) == key[1],
                    col(FhirResource.version_id) == current,
                )
                .values(version_id=version, last_updated=now, deleted=item.deleted, text=text)
            )
            if moved.rowcount != 1:
                raise Conflict(f"{key[0]}/{key[1]} was changed meanwhile; reload and retry")
        heads[key] = version
        stored.append(StoredVersion(key[0], key[1], version, now, item.deleted, text))

    if new_heads:
        connection.execute(sa.insert(FhirResource), new_heads)
    connection.execute(
        sa.insert(FhirResourceVersion),
        [
            {
                "resource_type": s.resource_type,
                "resource_id": s.resource_id,
                "version_id": s.version_id,
                "last_updated": s.last_updated,
                "deleted": s.deleted,
                "text": s.text,
            }
            for s in stored
        ],
    )
    _reindex(connection, pending, keys, now)
    return stored


def _reindex(
    connection: sa.Connection,
    pending: Sequence[PendingVersion],
    keys: list[tuple[str, str]],
    now: datetime,
) -> None:
    for resource_type in {t for t, _ in keys}:
        ids = [i for t, i in keys if t == resource_type]
        for chunk in range(0, len(ids), 500):
            connection.execute(
                sa.delete(FhirSearchValue).where(
                    col(FhirSearchValue.resource_type) == resource_type,
                    col(FhirSearchValue.resource_id).in_(ids[chunk : chunk + 500]),
                )
            )
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
    """A row of ``columns(...)``: a SQLAlchemy row or an asyncpg record, by position."""
    return StoredVersion(row[0], row[1], row[2], row[3], row[4], row[5])


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
    return _stored(rows[0]) if rows else None


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
    return _stored(rows[0]) if rows else None


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
