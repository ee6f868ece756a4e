"""What the directory's use cases share: adding a row, loading one or failing with 404, one
page of a search with the total, name search without diacritics, and saving a partial update."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from telehealth.directory.identifiers import fold_name
from telehealth.errors import InvalidInput, NotFound
from telehealth.models import Entity
from telehealth.timeutil import utcnow

MAX_PAGE = 200

Row = TypeVar("Row", bound=Entity)


async def add(session: AsyncSession, row: Row) -> Row:
    """A new row, written now so that its id and constraints are settled within the request."""
    session.add(row)
    await session.flush()
    return row


async def load(session: AsyncSession, model: type[Row], row_id: uuid.UUID, missing: str) -> Row:
    """The row, or NotFound with ``missing`` as the message."""
    row = await session.get(model, row_id)
    if row is None:
        raise NotFound(missing)
    return row


def name_matches(column: Any, text: str) -> list[Any]:
    """Every word of ``text`` appears in the folded name: 'nguyen an' finds 'Nguyễn Văn An'."""
    words = fold_name(text).split()
    if any(not word.isprintable() for word in words):
        raise InvalidInput.for_field("name", "contains control characters")
    if not words:
        raise InvalidInput.for_field("name", "give at least one letter or digit to search for")
    escaped = (word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for word in words)
    return [col(column).like(f"%{word}%", escape="\\") for word in escaped]


def equal_where_given(*criteria: tuple[Any, Any]) -> list[Any]:
    """``column == value`` for each (column, value) whose value was given (not None or empty)."""
    return [col(column) == value for column, value in criteria if value]


async def one_page(
    session: AsyncSession,
    statement: SelectOfScalar[Row],
    order: Sequence[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[Sequence[Row], int]:
    """The rows of ``statement`` from ``offset`` (at most ``MAX_PAGE``), and how many match."""
    total = await session.exec(select(func.count()).select_from(statement.subquery()))
    rows = await session.exec(statement.order_by(*order).offset(offset).limit(min(limit, MAX_PAGE)))
    return rows.all(), int(total.one())


def save_changes(session: AsyncSession, row: Row, changes: dict[str, Any]) -> Row:
    """Set the changed fields and the update time; the unit of work writes them."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    session.add(row)
    return row
