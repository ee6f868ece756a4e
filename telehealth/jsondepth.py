"""How deeply a JSON text may nest, checked before any parser sees it.

Python's parsers recurse once per level: a body nested a thousand levels deep (a few
kilobytes) raises ``RecursionError`` inside them, which is no input error they can name.
Nothing the service reads nests anywhere near ``MAX_DEPTH`` (a FHIR transaction Bundle with
nested extensions stays under 15), so deeper text is refused as bad input before parsing."""

from __future__ import annotations

import re

from telehealth.errors import BadRequest

MAX_DEPTH = 64

# A string (whose brackets do not count). Possessive repeats: no backtracking.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# Keep the brackets alone, objects' as arrays'.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def nests_deeper_than(text: bytes | str, limit: int = MAX_DEPTH) -> bool:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # the usual case, decided by two passes in C
    brackets = _STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)
    # Each pass takes away the innermost pairs, one level of nesting: what is left after
    # ``limit`` passes nests deeper. Passes over bytes in C, not a loop per bracket in Python.
    for _ in range(limit):
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return False  # nothing nested is left (or only malformed text, the parser's to refuse)
        brackets = shorter
    return b"[]" in brackets


def check_depth(text: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Refuse (400) JSON text that nests deeper than ``limit`` arrays and objects."""
    if nests_deeper_than(text, limit):
        raise BadRequest(
            f"The JSON body nests deeper than {limit} levels of arrays and objects; "
            "send a flatter document."
        )
