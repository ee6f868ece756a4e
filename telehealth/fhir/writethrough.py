"""Write-through from the domain: every change to a mapped row becomes a FHIR version in the
same transaction, so the FHIR view never drifts from the service's own state.

``after_flush`` remembers which mapped rows were inserted, changed or deleted; ``before_commit``
maps their final state once per transaction and writes the versions. A use case that must answer
with the new version (a FHIR create or update) calls ``flush_versions`` to write them earlier.
ORM-enabled ``update(Model)``/``delete(Model)`` statements (the conditional UPDATEs of the
state machines) are caught by ``do_orm_execute``: the ids they will touch are selected first, in
the same transaction, and those rows are reloaded and mapped at commit. Plain Core statements
on the table (``sa.update(table)``) bypass the hook: hot paths that write with them (booking)
say the row's final state in the unit of work's journal (``telehealth.journal``) instead, which
costs no query; rows and facts the journal keeps spare the mappers' queries too.

The composition root (``telehealth.reactions``) hooks this on a database's sessions
(``install_write_through``); the domain never imports it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth import notices
from telehealth.fhir.cache import announce_changes
from telehealth.fhir.models import FhirResource
from telehealth.fhir.registry import DEPENDENTS, MAPPINGS
from telehealth.fhir.store import PendingVersion, StoredVersion, write_versions
from telehealth.fhir.subscriptions import queue_notifications
from telehealth.journal import recorded

_PENDING = "fhir_pending"
_EXPECTED = "fhir_expected_versions"
_LOADED = "fhir_loaded_while_mapping"


def _collect_changes(session: Session, _flush_context: Any) -> None:
    pending: dict[tuple[type[Any], Any], tuple[Any, bool]] = session.info.setdefault(_PENDING, {})
    for obj in session.new:
        if type(obj) in MAPPINGS:
            pending[(type(obj), obj.id)] = (obj, False)
    for obj in session.dirty:
        # A row already touched by a bulk statement stays marked for a reload.
        reload = pending.get((type(obj), getattr(obj, "id", None)), (obj, False))[0] is None
        if (
            type(obj) in MAPPINGS
            and session.is_modified(obj, include_collections=False)
            and not reload
        ):
            pending[(type(obj), obj.id)] = (obj, False)
    for obj in session.deleted:
        if type(obj) in MAPPINGS:
            pending[(type(obj), obj.id)] = (obj, True)
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if type(obj) in DEPENDENTS:
            for key in DEPENDENTS[type(obj)](obj, session):
                pending.setdefault(key, (None, False))


def _collect_bulk_changes(state: ORMExecuteState) -> None:
    """An ORM ``UPDATE``/``DELETE`` of a mapped table: remember the ids it is about to touch
    (selected with its own WHERE, in the same transaction) to reload and map them at commit.
    For a table others depend on (a room opening re-maps its Appointment), the same."""
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    cls = state.bind_mapper.class_
    if cls not in MAPPINGS and cls not in DEPENDENTS:
        return
    where = state.statement.whereclause  # type: ignore[attr-defined]
    pending: dict[tuple[type[Any], Any], tuple[Any, bool]] = state.session.info.setdefault(
        _PENDING, {}
    )
    if cls in MAPPINGS:
        query = sa.select(cls.id) if where is None else sa.select(cls.id).where(where)
        for row_id in state.session.execute(query, state.parameters or {}).scalars().all():
            pending[(cls, row_id)] = (None, state.is_delete)
    if cls in DEPENDENTS:
        query = sa.select(cls) if where is None else sa.select(cls).where(where)
        for row in state.session.execute(query, state.parameters or {}).scalars().all():
            for key in DEPENDENTS[cls](row, state.session):
                pending.setdefault(key, (None, False))


def _keep_loaded(session: Session, instance: Any) -> None:
    """While versions are mapped, rows the mappers load stay in the (weak) identity map, so that
    the next mapper's ``session.get`` of the same row costs no query."""
    loaded = session.info.get(_LOADED)
    if loaded is not None:
        loaded.append(instance)


def write_pending(session: Session) -> list[StoredVersion]:
    """Map and store every mapped row changed since the last call, in this transaction."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    pending: dict[tuple[type[Any], Any], tuple[Any, bool]] = session.info.pop(_PENDING, {})
    told = recorded(session)
    if told is not None:
        for key, written in told.written.items():
            if key[0] in MAPPINGS:
                pending[key] = written
    expected: dict[tuple[str, str], int] = session.info.pop(_EXPECTED, {})
    session.info[_LOADED] = []
    try:
        items = _map_pending(session, pending, expected)
    finally:
        session.info.pop(_LOADED, None)
        if told is not None:  # what it told for these versions is spent; its changes stay
            told.written.clear()
            told.kept.clear()
            told.facts.clear()
    if not items:
        return []
    stored = write_versions(session, items)
    announce_changes(session, stored)
    queue_notifications(session, stored)
    return stored


def _map_pending(
    session: Session,
    pending: dict[tuple[type[Any], Any], tuple[Any, bool]],
    expected: dict[tuple[str, str], int],
) -> list[PendingVersion]:
    items = []
    for (cls, row_id), (obj, deleted) in pending.items():
        if obj is None and not deleted:
            # Changed by a bulk statement: the identity map may hold stale values.
            obj = session.get(cls, row_id, populate_existing=True)
            if obj is None:
                continue  # a dependent's row that does not exist (a room without booking)
        for mapping in MAPPINGS[cls]:
            resource = (
                {"resourceType": mapping.resource_type, "id": str(row_id)}
                if deleted
                else mapping.build(obj, session)
            )
            if resource is None:
                continue
            key = (mapping.resource_type, resource["id"])
            items.append(PendingVersion(resource, deleted, expected.get(key)))
    return items


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
    for model, mappings in MAPPINGS.items():
        rows = session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
        for mapping in mappings:
            type_filter = col(FhirResource.resource_type) == mapping.resource_type
            heads = session.execute(sa.select(sa.func.count()).where(type_filter)).scalar_one()
            if heads >= rows:
                continue
            stored = set(
                session.execute(sa.select(col(FhirResource.resource_id)).where(type_filter))
                .scalars()
                .all()
            )
            missing = [
                row
                for row in session.execute(sa.select(model)).scalars()
                if str(row.id) not in stored
            ]
            for start in range(0, len(missing), 1000):
                resources = (mapping.build(row, session) for row in missing[start : start + 1000])
                items = [PendingVersion(r) for r in resources if r is not None]
                versions = write_versions(session, items)
                announce_changes(session, versions)
                written += len(versions)
    return written


async def backfill(session: AsyncSession) -> int:
    """Write a first version for mapped rows that have none: rows that existed before their
    table was mapped (or before this module was installed). Safe to run again."""
    return await session.run_sync(_backfill)


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_EXPECTED, None)


def install_write_through() -> None:
    """Watch the ORM writes of every session (idempotent); the versions are written by
    ``write_before_commit``, a before-commit listener of the databases wired with it."""
    if not event.contains(Session, "after_flush", _collect_changes):
        event.listen(Session, "after_flush", _collect_changes)
        event.listen(Session, "do_orm_execute", _collect_bulk_changes)
        event.listen(Session, "loaded_as_persistent", _keep_loaded)
        event.listen(Session, "after_rollback", _forget_pending)
        notices.install()


def write_before_commit(session: Session) -> None:
    """The before-commit listener: the versions commit with the change, or not at all."""
    write_pending(session)
