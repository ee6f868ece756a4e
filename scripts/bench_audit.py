"""Audit rows as bare asyncpg statements, chained as ``telehealth.auth.audit.append_audit``
chains them: the tail read under the chain's lock (``audit_chain_tail()``), the hashes
computed here, one INSERT. For the bare ceilings of ``scripts/bench_booking`` and
``scripts/bench_timers``; call it inside the transaction, as the last write before commit.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from telehealth.auth.audit_chain import HASHED_FIELDS, START, Link, chained

COLUMNS = (*HASHED_FIELDS, "hash")
INSERT = (
    f"INSERT INTO audit_event ({', '.join(COLUMNS)}) "  # noqa: S608 (fixed column names)
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(COLUMNS) + 1))})"
)


async def append_audit(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """``rows`` name every audit column but seq, prev_hash and hash."""
    tail = await connection.fetchrow("SELECT seq, hash FROM audit_chain_tail()")
    chained(rows, START if tail["seq"] is None else Link(tail["seq"], tail["hash"]))
    await connection.executemany(INSERT, [tuple(row[name] for name in COLUMNS) for row in rows])
