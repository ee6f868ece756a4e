"""The depth limit counts arrays and objects, not brackets inside strings."""

from __future__ import annotations

import pytest

from telehealth.errors import BadRequest
from telehealth.jsondepth import MAX_DEPTH, check_depth, nests_deeper_than


def nested(depth: int) -> bytes:
    return b'{"a":[' * (depth // 2) + b"1" + b"]}" * (depth // 2)


def test_the_limit_is_inclusive() -> None:
    assert not nests_deeper_than(nested(MAX_DEPTH))
    assert nests_deeper_than(nested(MAX_DEPTH + 2))
    assert nests_deeper_than("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_brackets_in_strings_do_not_count() -> None:
    text = b'{"note": "' + b"[{" * 500 + b'", "escaped \\" [[[": ' + nested(10) + b"}"
    assert not nests_deeper_than(text)


def test_many_siblings_are_not_depth() -> None:
    assert not nests_deeper_than(b"[" + b'{"a": [1, {"b": []}]},' * 10_000 + b"1]")


def test_malformed_text_is_left_to_the_parser() -> None:
    assert not nests_deeper_than(b"[" * 10_000)
    assert not nests_deeper_than(b"]" * 10_000 + b"[" * 10_000)


def test_too_deep_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="deeper than 64"):
        check_depth(nested(1000))
