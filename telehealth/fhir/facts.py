"""Facts a mapper would otherwise query for at commit (an appointment's room, a request's
attachments), told by the use case in the unit of work's journal (``telehealth.journal``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from telehealth.journal import UNKNOWN, recorded

__all__ = ["UNKNOWN", "known"]


def known(session: Session, fact: tuple[str, Any]) -> Any:
    """What the journal was told of ``fact``, or ``UNKNOWN`` (then the mapper queries)."""
    told = recorded(session)
    return UNKNOWN if told is None else told.told(fact)
