"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106), and the rules a
new password must meet (issue #13, level 3).

A new password needs ``minimum_length`` characters (longer for an account without two-factor
sign-in), letters mixed with digits or symbols, must not be a common password or the
username in disguise, and must not be one of the account's last ``password_history``
passwords. The common passwords are the first 10,000 of Royce Williams' list of 20,000, in
the form Django ships it (``django/contrib/auth/common-passwords.txt.gz``, lowercased, most
frequent first): ``common-passwords.txt.gz`` beside this file.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from telehealth.errors import InvalidInput
from telehealth.settings import Settings

_hasher = PasswordHasher()
# Verified against when the account does not exist, so that timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
_COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")
_DECORATION = "0123456789!@#$%^&*()-_=+.,?~ "


def hash_password(password: str) -> str:
    """The hash to store; the rules are checked before (``check_new_password``)."""
    return _hasher.hash(password)


def hash_secret(secret: str) -> str:
    """A generated secret (client secret): no strength rules, it is random already."""
    return _hasher.hash(secret)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def minimum_length(settings: Settings, *, two_factor: bool) -> int:
    """The fewest characters a new password may have: ``password_min_length`` for an account
    that signs in with a second factor, ``password_min_length_without_2fa`` for one without
    (a password alone must resist guessing by itself). Callers pass the account's state from
    ``telehealth.auth.two_factor.signs_in_with_it``."""
    if two_factor:
        return settings.password_min_length
    return max(settings.password_min_length, settings.password_min_length_without_2fa)


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(_COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def _is_common(password: str) -> bool:
    """Compared lowercased, also without the digits and symbols people add at the end
    ("Password2024!" is "password")."""
    lowered = password.strip().lower()
    return bool({lowered, lowered.rstrip(_DECORATION)} & common_passwords())


def _is_username_in_disguise(password: str, username: str) -> bool:
    """The username, in any case, reversed, repeated, or with digits and symbols around it."""
    name = _NOT_ALPHANUMERIC.sub("", username.lower())
    if len(name) < 3:
        return False
    folded = _NOT_ALPHANUMERIC.sub("", password.lower())
    rest = folded.replace(name, "").replace(name[::-1], "")
    return rest != folded and (rest == "" or rest.isdigit())


def check_new_password(
    settings: Settings,
    password: str,
    *,
    username: str,
    two_factor: bool,
    field: str = "password",
) -> None:
    """Refuse a password that breaks a rule of its own (history is ``check_not_reused``)."""
    least = minimum_length(settings, two_factor=two_factor)
    if len(password) < least:
        raise InvalidInput.for_field(field, f"must be at least {least} characters")
    if password.isdigit() or password.isalpha():
        raise InvalidInput.for_field(field, "must mix letters with digits or symbols")
    if _is_common(password):
        raise InvalidInput.for_field(field, "is a commonly used password; choose another")
    if _is_username_in_disguise(password, username):
        raise InvalidInput.for_field(field, "must not be the username or a variant of it")


def check_not_reused(
    settings: Settings, password: str, recent_hashes: Iterable[str], *, field: str
) -> None:
    """Refuse one of the account's recent passwords (each verified: the hashes are salted)."""
    if any(verify_password(known, password) for known in recent_hashes):
        raise InvalidInput.for_field(
            field, f"must differ from your last {settings.password_history} passwords"
        )
