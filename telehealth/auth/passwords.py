"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from telehealth.errors import InvalidInput

_hasher = PasswordHasher()
# Verified against when the account does not exist, so that timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str, *, field: str = "password") -> str:
    check_password_strength(password, field=field)
    return _hasher.hash(password)


def hash_secret(secret: str) -> str:
    """A generated secret (client secret): no strength rules, it is random already."""
    return _hasher.hash(secret)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.for_field(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if password.isdigit() or password.isalpha():
        raise InvalidInput.for_field(field, "must mix letters with digits or symbols")
