"""The hash chain's rules, without a database: what counts as changed, deleted, inserted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from telehealth.auth.audit_chain import GENESIS, START, Link, chained, check_row, row_hash


def rows(count: int) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = [
        {
            "id": uuid.UUID(int=n),
            "recorded_at": datetime(2026, 12, 2, 10, 0, n, tzinfo=UTC),
            "actor_kind": "user",
            "actor_id": "a",
            "actor_name": "Bác sĩ Ánh",
            "action": "read",
            "entity_type": "Patient",
            "entity_id": str(n),
            "patient_id": None,
            "outcome": "success",
            "ip": None,
            "user_agent": None,
            "request_id": None,
            "detail": None,
        }
        for n in range(1, count + 1)
    ]
    chained(made, START)
    return made


def first_break(chain: list[dict[str, Any]], tail: Link = START) -> str | None:
    for row in chain:
        broken = check_row(row, tail)
        if broken is not None:
            return str(broken)
        tail = Link(row["seq"], row["hash"])
    return None


def test_a_chain_as_written_verifies() -> None:
    chain = rows(3)
    assert [row["seq"] for row in chain] == [1, 2, 3]
    assert chain[0]["prev_hash"] == GENESIS and chain[1]["prev_hash"] == chain[0]["hash"]
    assert first_break(chain) is None


def test_the_hash_covers_every_field_and_the_link() -> None:
    row = rows(1)[0]
    for field, other in (("actor_name", "Bác sĩ Anh"), ("prev_hash", "1" * 64), ("seq", 2)):
        assert row_hash(row | {field: other}) != row["hash"], field


def test_a_changed_row_is_named() -> None:
    chain = rows(3)
    chain[1]["outcome"] = "denied"
    assert first_break(chain) == (
        f"audit row seq 2 (id {chain[1]['id']}) was changed: its content no longer matches its hash"
    )


def test_a_deleted_row_is_a_gap() -> None:
    chain = rows(3)
    assert first_break([chain[0], chain[2]]) == ("audit row seq 2 is missing: the row was deleted")
    assert first_break(chain[1:]) == "audit row seq 1 is missing: the row was deleted"


def test_a_row_that_does_not_link_is_inserted() -> None:
    chain = rows(3)
    forged = chain[0] | {"id": uuid.UUID(int=99), "seq": 4}
    forged["hash"] = row_hash(forged)  # self-consistent, but chained to the wrong row
    assert "seq 4" in str(first_break([*chain, forged]))
    assert "inserted" in str(first_break([*chain, forged]))


def test_verification_starts_from_a_checkpoint() -> None:
    chain = rows(4)
    assert first_break(chain[2:], Link(2, chain[1]["hash"])) is None
    assert first_break(chain[2:], Link(2, GENESIS)) is not None
