"""Short-lived signed access tokens (JWT, HS256) and opaque refresh tokens.

An access token carries everything an authorisation decision needs (role, facility, scopes),
so checking a request costs no database round trip; it lives ``access_token_ttl_s`` seconds.
A token's signature is verified once per process: the principal it carries is remembered (a
bounded LRU keyed by the token string) until the token expires, since HMAC verification and
claim parsing cost about a tenth of a small request's CPU. Refresh tokens are random strings
stored only as SHA-256 hashes and rotated on every use.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import jwt

from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.errors import NotAuthenticated
from telehealth.timeutil import utcnow

if TYPE_CHECKING:
    from telehealth.auth.revocation import SessionResets

ISSUER = "telehealth"
_ALGORITHM = "HS256"


def issue_access_token(principal: Principal, key: str, ttl_s: int) -> str:
    now = utcnow()
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": str(principal.id),
        "typ": principal.kind,
        "name": principal.name,
        "lang": principal.language,
        "iat": now.timestamp(),  # to the microsecond: a reset in the same second as a login
        "exp": now + timedelta(seconds=ttl_s),
        "jti": secrets.token_hex(8),
    }
    if principal.role is not None:
        claims["role"] = principal.role.value
    if principal.organization_id is not None:
        claims["org"] = str(principal.organization_id)
    if principal.practitioner_id is not None:
        claims["prac"] = str(principal.practitioner_id)
    if principal.scopes:
        claims["scope"] = " ".join(sorted(principal.scopes))
    if principal.must_change_password:
        claims["pwc"] = True
    if principal.must_enrol_two_factor:
        claims["tfe"] = True
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def read_access_token(
    token: str,
    key: str,
    resets: SessionResets | None = None,
    clock: Callable[[], float] = time.time,
) -> Principal:
    """The principal a valid, unexpired token carries, unless its account's sessions were
    reset after it was issued (``auth.revocation``); ``NotAuthenticated`` otherwise. ``clock``
    (seconds since the epoch) says when "now" is, also for a token remembered as verified."""
    principal, issued_at, expires_at = _verified(token, key)
    if clock() >= expires_at:
        raise NotAuthenticated("The access token has expired; log in or refresh it")
    if resets is not None and resets.refuses(principal.id, issued_at):
        raise NotAuthenticated(
            "Your account was changed (deactivated, another role or a new password): log in again"
        )
    return principal


# Only tokens that verified are remembered (a refused one raises, and nothing is cached), so
# garbage cannot crowd out real sessions; 4096 entries cover every active user of a province.
@lru_cache(maxsize=4096)
def _verified(token: str, key: str) -> tuple[Principal, float, float]:
    try:
        claims = jwt.decode(
            token, key, algorithms=[_ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("The access token has expired; log in or refresh it") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated("The access token is not valid") from exc
    if claims.get("typ") not in ("user", "client"):  # e.g. a sign-in challenge
        raise NotAuthenticated("The access token is not valid")
    try:
        principal = Principal(
            kind="client" if claims.get("typ") == "client" else "user",
            id=uuid.UUID(str(claims["sub"])),
            name=str(claims.get("name", "")),
            role=Role(str(claims["role"])) if "role" in claims else None,
            organization_id=uuid.UUID(str(claims["org"])) if "org" in claims else None,
            practitioner_id=uuid.UUID(str(claims["prac"])) if "prac" in claims else None,
            scopes=frozenset(str(claims.get("scope", "")).split()),
            language=str(claims.get("lang", "vi")),
            must_change_password=claims.get("pwc") is True,
            must_enrol_two_factor=claims.get("tfe") is True,
        )
        return principal, float(claims.get("iat", 0)), float(claims["exp"])
    except (KeyError, ValueError, TypeError) as exc:
        raise NotAuthenticated("The access token is not valid") from exc


def new_refresh_token() -> tuple[str, str]:
    """A fresh token and the hash to store for it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
