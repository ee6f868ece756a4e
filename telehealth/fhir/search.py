"""FHIR search: query parameters -> range scans over ``fhir_search_value`` -> stored JSON.

Every criterion becomes ``resource_id IN (SELECT resource_id FROM fhir_search_value WHERE
resource_type = ? AND param = ? AND value ...)``, served by one composite index; a search by
one value (a reference, a status) reads its page straight off that index, newest first, so
it costs the same in a record of a thousand resources as in one of millions. Pages come back as
the stored text of each resource; nothing is parsed or re-serialised.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import READ_ONLY
from telehealth.db import Prepared
from telehealth.directory.identifiers import fold_name
from telehealth.errors import BadRequest
from telehealth.fhir.models import FhirResource, FhirSearchValue
from telehealth.fhir.search_params import SEARCH_PARAMS, SearchParam
from telehealth.fhir.store import StoredVersion, columns, instant, prepared_rows, version_of
from telehealth.timeutil import as_utc

DEFAULT_COUNT = 20
MAX_COUNT = 200
_AFTER = "\x7f"  # sorts after every character a stored value holds: 'abc' <= x < 'abc\x7f'
_PREFIXES = ("eq", "ge", "gt", "le", "lt")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")
# Accepted and ignored: output format hints and fhirpy's spelling of "count only".
_TOLERATED = {"_format", "_pretty", "_totalMethod"}
INCLUDES = {
    "PractitionerRole": ("practitioner", "organization"),
    "Organization": ("partof",),
    "Patient": ("organization",),
    "Appointment": ("patient", "practitioner", "based-on", "slot"),
    "ServiceRequest": ("patient", "requester"),
    "Slot": ("schedule",),
    "Task": ("patient",),
    "Observation": ("patient",),
    "DocumentReference": ("patient",),
}


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Any] = field(default_factory=list)  # SQL conditions on FhirResource
    count: int = DEFAULT_COUNT
    offset: int = 0
    newest_first: bool = True
    want_total: bool = False
    count_only: bool = False
    includes: list[tuple[str, str]] = field(default_factory=list)  # (source type, param)
    revincludes: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False  # a restriction that nothing can satisfy
    asked: int = 0  # criteria from the query string (restrictions for access are not counted)
    driver: Driver | None = None


@dataclass(frozen=True)
class Driver:
    """The one value a search is about (``Patient?organization=X``, ``Appointment?status=
    booked``): its index entries, newest first, give the page directly, however many
    resources match."""

    param: str
    value: str
    condition: Any  # the criterion it replaces
    system: str | None = None  # a token's system, when the search names one


def _driver(param: SearchParam, text: str, condition: Any) -> Driver | None:
    """The driver of a search by one value, if each resource has at most one index entry for
    it (else the join would repeat a resource): a reference, or a token whose system is named
    or whose values have none."""
    if param.kind == "reference":
        return Driver(param.name, _reference_value(param, text), condition)
    if param.kind != "token":
        return None
    system, bar, code = text.rpartition("|")
    if bar:
        return Driver(param.name, code.strip(), condition, system)
    return Driver(param.name, code.strip(), condition) if param.systemless else None


@dataclass(frozen=True)
class SearchResult:
    matches: list[StoredVersion]
    included: list[StoredVersion]
    total: int | None
    has_next: bool


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a whole number, not '{text}'") from exc
    return max(low, min(high, value))


@dataclass(frozen=True)
class Deferred:
    """A criterion whose SQL is built only if the search needs it: a search driven by one
    value runs a prepared statement instead, and building the expression with SQLAlchemy
    took a sixth of such a search's time on the server."""

    build: Callable[[], Any]


def _sql(criterion: Any) -> Any:
    return criterion.build() if isinstance(criterion, Deferred) else criterion


def _values_in(resource_type: str, param: str, condition: Any) -> Any:
    return col(FhirResource.resource_id).in_(
        sa.select(col(FhirSearchValue.resource_id)).where(
            col(FhirSearchValue.resource_type) == resource_type,
            col(FhirSearchValue.param) == param,
            condition,
        )
    )


def _values_in_deferred(resource_type: str, param: str, values: list[str]) -> Deferred:
    return Deferred(
        lambda: _values_in(resource_type, param, col(FhirSearchValue.value).in_(values))
    )


def _prefixed(text: str) -> tuple[str, str]:
    if text[:2] in _PREFIXES and text[2:3].isdigit():
        return text[:2], text[2:]
    return "eq", text


def _range(op: str, value: str) -> Any:
    column = col(FhirSearchValue.value)
    return {
        "eq": sa.and_(column >= value, column < value + _AFTER),
        "ge": column >= value,
        "gt": column >= value + _AFTER,
        "le": column < value + _AFTER,
        "lt": column < value,
    }[op]


def _reference_value(param: SearchParam, text: str) -> str:
    text = text.split("/_history/")[0]
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2:
        return f"{parts[-2]}/{parts[-1]}"
    return f"{param.target}/{text}"


def _criterion(resource_type: str, param: SearchParam, modifier: str, text: str) -> list[Any]:
    if not text:
        raise BadRequest(f"{param.name}: give a value to search for")
    alternatives = text.split(",")
    if param.kind == "string":
        if modifier not in ("", "contains", "exact"):
            raise BadRequest(f"{param.name}: modifier :{modifier} is not supported")
        conditions = []
        for word in fold_name(text).split():
            condition = (
                col(FhirSearchValue.value).contains(word, autoescape=True)
                if modifier == "contains"
                else _range("eq", word)
                if modifier == ""
                else col(FhirSearchValue.value) == word
            )
            conditions.append(_values_in(resource_type, param.name, condition))
        if not conditions:
            raise BadRequest(f"{param.name}: give at least one letter or digit")
        return conditions
    if modifier:
        raise BadRequest(f"{param.name}: modifier :{modifier} is not supported")
    if param.kind == "token":
        codes = [alternative.rpartition("|") for alternative in alternatives]

        def any_code() -> Any:
            options = []
            for system, bar, code in codes:
                condition = col(FhirSearchValue.value) == code.strip()
                if bar:
                    condition = sa.and_(condition, col(FhirSearchValue.system) == system)
                options.append(condition)
            return _values_in(resource_type, param.name, sa.or_(*options))

        return [Deferred(any_code)]
    if param.kind == "reference":
        references = [_reference_value(param, a.strip()) for a in alternatives]
        return [_values_in_deferred(resource_type, param.name, references)]
    op, value = _prefixed(text.replace(" ", "+"))  # an unencoded '+' arrives as a space
    if not _DATE.fullmatch(value):
        raise BadRequest(f"{param.name}: '{value}' is not a date such as 1985-03-14")
    return [_values_in(resource_type, param.name, _range(op, utc_text(value)))]


def utc_text(value: str) -> str:
    """A searched instant with an offset, as the UTC text stored (``...Z``); dates unchanged.

    Stored instants are UTC with milliseconds, so ``2026-11-24T10:00+07:00`` becomes
    ``2026-11-24T03:00:00.000Z``."""
    if "T" not in value or not (value.endswith("Z") or "+" in value or value.count("-") > 2):
        return value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return instant(as_utc(moment))


def _last_updated(text: str) -> Any:
    op, value = _prefixed(text.replace(" ", "+"))  # an unencoded '+' arrives as a space
    if not _DATE.fullmatch(value):
        raise BadRequest(f"_lastUpdated: '{value}' is not a date or instant")
    try:
        if "T" in value:
            start = datetime.fromisoformat(value.replace("Z", "+00:00"))
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
            end = start + timedelta(seconds=1)
        else:
            pieces = [int(p) for p in value.split("-")] + [1, 1]
            start = datetime(pieces[0], pieces[1], pieces[2], tzinfo=UTC)
            end = start + timedelta(days=1 if value.count("-") == 2 else 31)
            if value.count("-") == 0:
                end = datetime(pieces[0] + 1, 1, 1, tzinfo=UTC)
    except ValueError as exc:
        raise BadRequest(f"_lastUpdated: '{value}' is not a valid date") from exc
    column = col(FhirResource.last_updated)
    return {
        "eq": sa.and_(column >= start, column < end),
        "ge": column >= start,
        "gt": column >= end,
        "le": column < end,
        "lt": column < start,
    }[op]


def _include(resource_type: str, text: str, reverse: bool) -> tuple[str, str]:
    source, _, param = text.partition(":")
    param = param.split(":")[0]
    if param not in INCLUDES.get(source, ()):
        pairs = ", ".join(f"{s}:{p}" for s, ps in INCLUDES.items() for p in ps)
        raise BadRequest(
            f"{'_revinclude' if reverse else '_include'}={text} is not supported; use {pairs}"
        )
    target = SEARCH_PARAMS[source][param].target
    if (reverse and target != resource_type) or (not reverse and source != resource_type):
        raise BadRequest(f"{text} does not apply to a search of {resource_type}")
    return source, param


def parse_search(resource_type: str, params: Sequence[tuple[str, str]]) -> SearchQuery:
    """Understand a FHIR search; unknown parameters are refused (400) rather than ignored,
    so that a typo cannot silently widen a search."""
    known = SEARCH_PARAMS.get(resource_type, {})
    query = SearchQuery(resource_type)
    for key, text in params:
        name, _, modifier = key.partition(":")
        if name in known:
            conditions = _criterion(resource_type, known[name], modifier, text.strip())
            query.criteria.extend(conditions)
            query.asked += len(conditions)
            if not modifier and "," not in text:
                query.driver = _driver(known[name], text.strip(), conditions[0])
        elif name == "_id":
            query.criteria.append(col(FhirResource.resource_id).in_(text.split(",")))
            query.asked += 1
        elif name == "_lastUpdated":
            query.criteria.append(_last_updated(text))
        elif name == "_count":
            query.count = _int("_count", text, 0, MAX_COUNT)
        elif name in ("_offset", "_getpagesoffset"):
            query.offset = _int(name, text, 0, 10_000_000)
        elif name == "_sort":
            if text not in ("_lastUpdated", "-_lastUpdated"):
                raise BadRequest("_sort: only _lastUpdated and -_lastUpdated are supported")
            query.newest_first = text.startswith("-")
        elif name == "_total":
            if text not in ("none", "estimate", "accurate"):
                raise BadRequest("_total must be none, estimate or accurate")
            query.want_total = text != "none"
        elif name == "_summary":
            if text not in ("count", "false"):
                raise BadRequest("_summary: only count (and false) are supported")
            query.count_only = text == "count"
        elif name == "_include":
            query.includes.append(_include(resource_type, text, reverse=False))
        elif name == "_revinclude":
            query.revincludes.append(_include(resource_type, text, reverse=True))
        elif name not in _TOLERATED:
            supported = ", ".join(sorted(known)) or "none"
            raise BadRequest(
                f"Unknown search parameter '{key}' for {resource_type}; supported: {supported}"
            )
    if query.asked != 1:
        query.driver = None  # with other criteria, their own selectivity decides
    if query.count == 0:
        query.count_only = True
    if query.count_only:
        query.want_total = True
    return query


def restrict_references(query: SearchQuery, param: str, allowed: set[str]) -> None:
    """Only resources whose ``param`` points at one of ``allowed`` (access by facility)."""
    if not allowed:
        query.empty = True
        return
    condition = _values_in_deferred(query.resource_type, param, sorted(allowed))
    query.criteria.append(condition)
    if query.asked == 0 and len(allowed) == 1:
        query.driver = Driver(param, next(iter(allowed)), condition)


async def _execute(session: AsyncSession, statement: Any) -> Any:
    """Core execution: on a read's own connection, or in the session's transaction."""
    connection = session.info.get(READ_ONLY)
    if connection is not None:
        return await connection.execute(statement)
    return await session.exec(statement)


async def run_search(session: AsyncSession, query: SearchQuery) -> SearchResult:
    if query.empty:
        return SearchResult([], [], 0 if query.want_total else None, False)
    total = None
    if query.want_total:
        counted = await _execute(
            session, sa.select(sa.func.count()).select_from(FhirResource).where(*_where(query))
        )
        total = int(counted.scalar_one())
    if query.count_only:
        return SearchResult([], [], total, False)
    if query.driver is not None and query.criteria == [query.driver.condition]:
        driver = query.driver
        system = {} if driver.system is None else {"system": driver.system}
        rows = await prepared_rows(
            session,
            _DRIVEN[query.newest_first, driver.system is not None],
            resource_type=query.resource_type,
            param=driver.param,
            value=driver.value,
            offset=query.offset,
            limit=query.count + 1,
            **system,
        )
    else:
        rows = (await _execute(session, _page(query))).all()
    matches = [version_of(r) for r in rows[: query.count]]
    included = await _included(session, query, [m.resource_id for m in matches])
    return SearchResult(matches, included, total, len(rows) > query.count)


def _where(query: SearchQuery, without: Any = None) -> list[Any]:
    return [
        col(FhirResource.resource_type) == query.resource_type,
        col(FhirResource.deleted).is_(False),
        *(_sql(c) for c in query.criteria if c is not without),
    ]


def _ordered(
    statement: Any, order: Any, tie: Any, newest_first: bool, offset: Any, limit: Any
) -> Any:
    # Ties (one transaction stamps many versions alike) go by id in the same direction, so
    # that an index is read in one direction and the page needs no sort.
    keys = (order.desc(), tie.desc()) if newest_first else (order.asc(), tie.asc())
    return statement.order_by(*keys).offset(offset).limit(limit)


def _driven_by(resource_type: Any, param: Any, value: Any, system: Any = None) -> Any:
    """Resources joined to the index entries of one search value: in the index's order."""
    values = FhirSearchValue.__table__  # type: ignore[attr-defined]
    by_system = [] if system is None else [values.c.system == system]
    return (
        sa.select(*columns(FhirResource))
        .join(
            values,
            sa.and_(
                values.c.resource_type == col(FhirResource.resource_type),
                values.c.resource_id == col(FhirResource.resource_id),
            ),
        )
        .where(
            values.c.resource_type == resource_type,
            values.c.param == param,
            values.c.value == value,
            *by_system,
        )
    )


def _page(query: SearchQuery) -> Any:
    """One page of matches, in ``_lastUpdated`` order: from the driver's index entries when
    the search has one, else from every match sorted."""
    offset, limit = query.offset, query.count + 1
    if query.driver is None:
        statement = sa.select(*columns(FhirResource)).where(*_where(query))
        order, tie = col(FhirResource.last_updated), col(FhirResource.resource_id)
        return _ordered(statement, order, tie, query.newest_first, offset, limit)
    driver = query.driver
    statement = _driven_by(query.resource_type, driver.param, driver.value, driver.system)
    statement = statement.where(*_where(query, without=driver.condition))
    values = FhirSearchValue.__table__  # type: ignore[attr-defined]
    order, tie = values.c.last_updated, values.c.resource_id
    return _ordered(statement, order, tie, query.newest_first, offset, limit)


def _driven(newest_first: bool, by_system: bool) -> Prepared:
    """``_page`` of a search about one value and nothing else, built once."""
    values = FhirSearchValue.__table__  # type: ignore[attr-defined]
    resource_type: Any = sa.bindparam("resource_type")
    system: Any = sa.bindparam("system") if by_system else None
    statement = _driven_by(
        resource_type, sa.bindparam("param"), sa.bindparam("value"), system
    ).where(col(FhirResource.resource_type) == resource_type, col(FhirResource.deleted).is_(False))
    order, tie = values.c.last_updated, values.c.resource_id
    limits: tuple[Any, Any] = sa.bindparam("offset"), sa.bindparam("limit")
    return Prepared(_ordered(statement, order, tie, newest_first, *limits))


_DRIVEN = {
    (newest, by_system): _driven(newest, by_system)
    for newest in (True, False)
    for by_system in (True, False)
}


async def _included(
    session: AsyncSession, query: SearchQuery, ids: list[str]
) -> list[StoredVersion]:
    if not ids:
        return []
    wanted: dict[str, set[str]] = {}
    for source, param in query.includes:
        target = SEARCH_PARAMS[source][param].target or ""
        refs = (
            await _execute(
                session,
                sa.select(col(FhirSearchValue.value)).where(
                    col(FhirSearchValue.resource_type) == source,
                    col(FhirSearchValue.param) == param,
                    col(FhirSearchValue.resource_id).in_(ids),
                ),
            )
        ).scalars()
        wanted.setdefault(target, set()).update(r.split("/", 1)[1] for r in refs)
    for source, param in query.revincludes:
        targets = [f"{query.resource_type}/{i}" for i in ids]
        sources = (
            await _execute(
                session,
                sa.select(col(FhirSearchValue.resource_id)).where(
                    col(FhirSearchValue.resource_type) == source,
                    col(FhirSearchValue.param) == param,
                    col(FhirSearchValue.value).in_(targets),
                ),
            )
        ).scalars()
        wanted.setdefault(source, set()).update(sources)
    found: list[StoredVersion] = []
    for resource_type, resource_ids in wanted.items():
        if resource_type == query.resource_type:
            resource_ids -= set(ids)
        rows = await _execute(
            session,
            sa.select(*columns(FhirResource)).where(
                col(FhirResource.resource_type) == resource_type,
                col(FhirResource.resource_id).in_(sorted(resource_ids)),
                col(FhirResource.deleted).is_(False),
            ),
        )
        found.extend(version_of(r) for r in rows)
    return found


def included_types(query: SearchQuery) -> set[str]:
    types = {SEARCH_PARAMS[s][p].target or "" for s, p in query.includes}
    return types | {s for s, _ in query.revincludes}
