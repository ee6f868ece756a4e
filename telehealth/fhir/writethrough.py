"""Write-through from the domain: every change to a mapped row becomes a FHIR version in the
same transaction, so the FHIR view never drifts from the service's own state.

``after_flush`` remembers which mapped rows were inserted, changed or deleted; ``before_commit``
maps their final state once per transaction and writes the versions. A use case that must answer
with the new version (a FHIR create or update) calls ``flush_versions`` to write them earlier.
Bulk ``UPDATE``/``DELETE`` statements bypass the ORM and therefore this hook: change mapped
tables through the ORM.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.fhir.mapping import MAPPINGS
from telehealth.fhir.models import FhirResource
from telehealth.fhir.store import PendingVersion, StoredVersion, write_versions

_PENDING = "fhir_pending"
_EXPECTED = "fhir_expected_versions"


def _collect_changes(session: Session, _flush_context: Any) -> None:
    pending: dict[tuple[type[Any], Any], tuple[Any, bool]] = session.info.setdefault(_PENDING, {})
    for obj in session.new:
        if type(obj) in MAPPINGS:
            pending[(type(obj), obj.id)] = (obj, False)
    for obj in session.dirty:
        if type(obj) in MAPPINGS and session.is_modified(obj, include_collections=False):
            pending[(type(obj), obj.id)] = (obj, False)
    for obj in session.deleted:
        if type(obj) in MAPPINGS:
            pending[(type(obj), obj.id)] = (obj, True)


def write_pending(session: Session) -> list[StoredVersion]:
    """Map and store every mapped row changed since the last call, in this transaction."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    pending: dict[tuple[type[Any], Any], tuple[Any, bool]] = session.info.pop(_PENDING, {})
    expected: dict[tuple[str, str], int] = session.info.pop(_EXPECTED, {})
    items = []
    for (cls, row_id), (obj, deleted) in pending.items():
        mapping = MAPPINGS[cls]
        resource = (
            {"resourceType": mapping.resource_type, "id": str(row_id)}
            if deleted
            else mapping.build(obj, session)
        )
        key = (mapping.resource_type, str(row_id))
        items.append(PendingVersion(resource, deleted, expected.get(key)))
    return write_versions(session, items)


def _before_commit(session: Session) -> None:
    write_pending(session)


def expect_version(
    session: AsyncSession, resource_type: str, resource_id: str, version: int
) -> None:
    """The next version of this resource must follow ``version`` (If-Match), or the write fails
    with 412; checked by the conditional UPDATE of the head row."""
    session.sync_session.info.setdefault(_EXPECTED, {})[(resource_type, resource_id)] = version


async def flush_versions(session: AsyncSession) -> list[StoredVersion]:
    return await session.run_sync(write_pending)


def _backfill(session: Session) -> int:
    written = 0
    for model, mapping in MAPPINGS.items():
        heads = session.execute(
            sa.select(sa.func.count()).where(
                col(FhirResource.resource_type) == mapping.resource_type
            )
        ).scalar_one()
        if heads >= session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one():
            continue
        stored = set(
            session.execute(
                sa.select(col(FhirResource.resource_id)).where(
                    col(FhirResource.resource_type) == mapping.resource_type
                )
            ).scalars()
        )
        missing = [
            row for row in session.execute(sa.select(model)).scalars() if str(row.id) not in stored
        ]
        for start in range(0, len(missing), 1000):
            pending = session.info.setdefault(_PENDING, {})
            for row in missing[start : start + 1000]:
                pending[(model, row.id)] = (row, False)
            written += len(write_pending(session))
    return written


async def backfill(session: AsyncSession) -> int:
    """Write a first version for mapped rows that have none: rows that existed before their
    table was mapped (or before this module was installed). Safe to run again."""
    return await session.run_sync(_backfill)


def install_write_through() -> None:
    """Hook every ORM session (idempotent): requests, jobs, the CLI and the demo seed alike."""
    if not event.contains(Session, "after_flush", _collect_changes):
        event.listen(Session, "after_flush", _collect_changes)
        event.listen(Session, "before_commit", _before_commit)
