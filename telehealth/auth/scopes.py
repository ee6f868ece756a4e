"""SMART on FHIR system scopes: ``system/Patient.rs``, ``system/*.cruds``, ``system/Patient.read``.

v2 permissions are letters from ``cruds`` (create, read, update, delete, search); the v1 forms
``read`` (= rs), ``write`` (= cud) and ``*`` (= cruds) are accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SCOPE = re.compile(r"^system/(?P<resource>\*|[A-Z][A-Za-z]+)\.(?P<perms>[cruds]+|read|write|\*)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


def parse_scopes(text: str) -> frozenset[str]:
    """Validated, normalised scopes; raises ValueError naming the first bad one."""
    scopes = set()
    for scope in text.split():
        match = _SCOPE.fullmatch(scope)
        if match is None:
            raise ValueError(f"'{scope}' is not a SMART system scope such as system/Patient.rs")
        perms = _V1.get(match["perms"], match["perms"])
        if perms != "".join(sorted(set(perms), key="cruds".index)):
            raise ValueError(f"'{scope}': permissions must be in the order c, r, u, d, s")
        scopes.add(f"system/{match['resource']}.{perms}")
    return frozenset(scopes)


def scope_allows(scopes: Iterable[str], resource: str, permission: str) -> bool:
    """Whether any scope grants ``permission`` (one of c r u d s) on ``resource``."""
    for scope in scopes:
        target, _, perms = scope.removeprefix("system/").partition(".")
        if target in ("*", resource) and permission in perms:
            return True
    return False
