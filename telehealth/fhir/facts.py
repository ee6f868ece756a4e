"""Facts a mapper would otherwise query for at commit (an appointment's room, a request's
attachments), told by the use case that has them at hand. They live in the session until the
versions of the transaction are written (``telehealth.fhir.writethrough``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

_FACTS = "fhir_known_facts"
UNKNOWN = object()


def know(session: AsyncSession, fact: tuple[str, Any], value: Any) -> None:
    session.sync_session.info.setdefault(_FACTS, {})[fact] = value


def known(session: Session, fact: tuple[str, Any]) -> Any:
    """What ``know`` was told of ``fact``, or ``UNKNOWN`` (then the mapper queries)."""
    return session.info.get(_FACTS, {}).get(fact, UNKNOWN)


def forget(session: Session) -> None:
    session.info.pop(_FACTS, None)
