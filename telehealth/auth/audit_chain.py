"""The audit log's hash chain: how a row is serialised and hashed, and how a run of rows is
checked. Pure functions, no I/O: the writer (``auth.audit``) and ``telehealth audit verify``
both use these, so they cannot disagree (a migration that re-chains the log must too).

Row ``n`` stores ``seq`` (1, 2, 3, ... with no gaps), ``prev_hash`` (row ``n-1``'s ``hash``;
``GENESIS`` for the first row ever written) and ``hash``: the SHA-256, in hex, of the row's
canonical form, which is the JSON object of ``HASHED_FIELDS`` (``prev_hash`` and ``seq``
included) with sorted keys, no spaces, UTF-8, times as ISO 8601 UTC with microseconds, ids
as lower-case UUID text. An exported line (``telehealth audit export``) is that object plus
``hash``, so a log server re-checks it with any JSON library.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from telehealth.timeutil import as_utc

GENESIS = "0" * 64  # the prev_hash of seq 1: nothing came before it

# The format is part of every stored hash: changing this list (or the value forms below)
# makes every existing row fail verification. A new audit column is left out, or needs a
# migration that re-chains the log.
HASHED_FIELDS = (
    "seq",
    "prev_hash",
    "id",
    "recorded_at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "entity_type",
    "entity_id",
    "patient_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "detail",
)


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def canonical(row: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed fields of a row in the form they are hashed and exported in."""
    return {name: _canonical_value(row[name]) for name in HASHED_FIELDS}


def row_hash(row: Mapping[str, Any]) -> str:
    text = json.dumps(canonical(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    """Where the chain stands: the last row's ``seq`` and ``hash`` (0 and ``GENESIS`` before
    the first row; a checkpoint's after old rows were pruned)."""

    seq: int
    hash: str


START = Link(0, GENESIS)


def chained(rows: list[dict[str, Any]], tail: Link) -> Link:
    """Give each row its ``seq``, ``prev_hash`` and ``hash`` after ``tail``, in list order;
    returns the new tail."""
    for row in rows:
        row["seq"] = tail.seq + 1
        row["prev_hash"] = tail.hash
        row["hash"] = row_hash(row)
        tail = Link(row["seq"], row["hash"])
    return tail


BreakKind = Literal["changed", "deleted", "inserted"]


@dataclass(frozen=True)
class ChainBreak:
    """The first place the stored rows stop being the chain that was written."""

    kind: BreakKind
    seq: int
    row_id: str | None

    def __str__(self) -> str:
        where = f"audit row seq {self.seq}" + (f" (id {self.row_id})" if self.row_id else "")
        if self.kind == "deleted":
            return f"{where} is missing: the row was deleted"
        if self.kind == "inserted":
            return (
                f"{where} does not follow the row before it: a row was inserted here "
                "(or the rows before it were rewritten)"
            )
        return f"{where} was changed: its content no longer matches its hash"


def check_row(row: Mapping[str, Any], tail: Link) -> ChainBreak | None:
    """Whether ``row`` is the one the chain expects after ``tail``. A gap in ``seq`` is a
    deletion; a row whose ``prev_hash`` is not the tail's hash was put there by someone else
    than the writer; a row whose own hash does not match its content was edited."""
    row_id = str(row["id"])
    if row["seq"] != tail.seq + 1:
        return ChainBreak("deleted", tail.seq + 1, None)
    if row["prev_hash"] != tail.hash:
        return ChainBreak("inserted", row["seq"], row_id)
    if row["hash"] != row_hash(row):
        return ChainBreak("changed", row["seq"], row_id)
    return None
