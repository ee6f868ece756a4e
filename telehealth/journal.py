"""The journal of a unit of work: what the domain changed, said by the domain, heard at commit.

A use case writes its rows and says in the session's journal what the listeners need beside
them: rows it wrote with Core statements (which no ORM event sees), rows it already loaded and
facts it already knows (so that a listener need not query them again), and what happened to
which entity (``appointment.booked`` of a consult request). It never names a listener.

The composition root (``telehealth.reactions``) registers the listeners on the ``Database``:
``before_commit`` ones run inside the transaction (what must commit with the change, such as
the FHIR versions), ``after_commit`` ones once it has committed (what others are told, such as
open pages). A rolled-back transaction's journal is dropped unheard.

The core owns this module; it imports nothing of the domain nor of FHIR.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

_JOURNAL = "journal"  # in a session's info
_LISTENERS = "journal_listeners"  # in the info of a database's sessions
UNKNOWN: Any = object()


@dataclass(frozen=True)
class Change:
    """``what`` happened to one entity (``ConsultRequest``, its id, ``appointment.booked``)."""

    entity: str
    entity_id: uuid.UUID
    what: str


@dataclass
class Journal:
    written: dict[tuple[type[Any], Any], tuple[Any, bool]] = field(default_factory=dict)
    kept: list[Any] = field(default_factory=list)
    facts: dict[tuple[str, Any], Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    def wrote(self, row: Any, deleted: bool = False) -> None:
        """A row written with a Core statement, in its state after the write (e.g. from
        ``RETURNING``): listeners that map rows take it as it is, without reading it back."""
        self.written[(type(row), row.id)] = (row, deleted)

    def keep(self, *rows: Any) -> None:
        """Rows already loaded that listeners will look up (``session.get``) before commit:
        kept in the session's (weak) identity map until then, so those lookups cost no query."""
        self.kept.extend(row for row in rows if row is not None)

    def tell(self, fact: tuple[str, Any], value: Any) -> None:
        """A fact a listener would otherwise query (an appointment's room)."""
        self.facts[fact] = value

    def told(self, fact: tuple[str, Any]) -> Any:
        """What ``tell`` said of ``fact``, or ``UNKNOWN`` (then the listener queries)."""
        return self.facts.get(fact, UNKNOWN)

    def changed(self, entity: str, entity_id: uuid.UUID, what: str) -> None:
        """What the use case did to an entity; one change per entity and unit of work, the
        last said (a conclusion completes the appointment, and says it concluded)."""
        kept = [c for c in self.changes if (c.entity, c.entity_id) != (entity, entity_id)]
        self.changes = [*kept, Change(entity, entity_id, what)]


def journal(session: AsyncSession | Session) -> Journal:
    """The journal of the session's transaction."""
    found: Journal | None = session.info.get(_JOURNAL)
    if found is None:
        found = session.info[_JOURNAL] = Journal()
    return found


def recorded(session: AsyncSession | Session) -> Journal | None:
    """The session's journal if anything was said in it, without starting one."""
    found: Journal | None = session.info.get(_JOURNAL)
    return found


def take_journal(session: AsyncSession | Session) -> Journal | None:
    """The journal, handed over once (after commit) and gone from the session."""
    taken: Journal | None = session.info.pop(_JOURNAL, None)
    return taken


BeforeCommit = Callable[[Session], None]
AfterCommit = Callable[[Journal], Awaitable[None]]


@dataclass
class Listeners:
    """What a ``Database``'s units of work do when they commit, registered by the composition
    root. ``session_hooks`` are for a listener that also watches the ORM's own events (the
    FHIR write-through sees rows changed through the ORM): each installs its hooks, once."""

    before_commit: list[BeforeCommit] = field(default_factory=list)
    after_commit: list[AfterCommit] = field(default_factory=list)
    session_hooks: list[Callable[[], None]] = field(default_factory=list)


def _before_commit(session: Session) -> None:
    listeners: Listeners | None = session.info.get(_LISTENERS)
    if listeners is not None:
        for listener in listeners.before_commit:
            listener(session)


def listening_info(listeners: Listeners) -> dict[str, Any]:
    """The ``info`` of a database's sessions: they carry its listeners, which run before each
    commit; a rolled-back session's journal is dropped. Hooks every ORM session (idempotent)."""
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_rollback", take_journal)
    return {_LISTENERS: listeners}
