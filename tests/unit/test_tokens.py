"""Access tokens: a round trip keeps the principal; anything expired, forged or incomplete fails."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest

from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.auth.tokens import (
    ISSUER,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    read_access_token,
)
from telehealth.errors import NotAuthenticated
from telehealth.timeutil import utcnow

KEY = "unit-test-signing-key-" + "k" * 32
DOCTOR = Principal(
    kind="user",
    id=uuid.uuid4(),
    name="BS. Nguyễn Văn An",
    role=Role.REQUESTER,
    organization_id=uuid.uuid4(),
    practitioner_id=uuid.uuid4(),
    language="en",
)


def _claims(**changes: object) -> dict[str, object]:
    now = utcnow()
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": str(DOCTOR.id),
        "typ": "user",
        "name": DOCTOR.name,
        "role": "requester",
        "org": str(DOCTOR.organization_id),
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_round_trip_keeps_the_principal() -> None:
    assert read_access_token(issue_access_token(DOCTOR, KEY, 60), KEY) == DOCTOR


def test_client_round_trip_keeps_scopes() -> None:
    client = Principal(
        kind="client", id=uuid.uuid4(), name="HIS", scopes=frozenset({"system/Patient.rs"})
    )
    assert read_access_token(issue_access_token(client, KEY, 60), KEY) == client


def test_expired_token_is_refused_with_a_clear_message() -> None:
    past = utcnow() - timedelta(minutes=1)
    token = jwt.encode(_claims(iat=past - timedelta(minutes=15), exp=past), KEY, "HS256")
    with pytest.raises(NotAuthenticated, match="expired"):
        read_access_token(token, KEY)


def test_a_token_verified_before_is_still_refused_once_it_expires() -> None:
    """Tokens are verified once per process and remembered: the memory must not outlive them.
    The clock moves past the expiry instead of the test waiting for it."""
    expires = int(time.time()) + 60
    token = jwt.encode(_claims(exp=expires), KEY, "HS256")
    remembered = read_access_token(token, KEY)
    assert read_access_token(token, KEY, clock=lambda: expires - 0.05) == remembered
    with pytest.raises(NotAuthenticated, match="expired"):
        read_access_token(token, KEY, clock=lambda: expires)  # refused from the expiry on
    with pytest.raises(NotAuthenticated, match="expired"):
        read_access_token(token, KEY, clock=lambda: expires + 0.05)


def test_a_remembered_token_is_not_accepted_under_another_key() -> None:
    token = issue_access_token(DOCTOR, KEY, 60)
    assert read_access_token(token, KEY) == DOCTOR
    with pytest.raises(NotAuthenticated, match="not valid"):
        read_access_token(token, "rotated-signing-key-" + "r" * 32)


def test_tampered_payload_is_refused() -> None:
    token = issue_access_token(DOCTOR, KEY, 60)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "administrator"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(NotAuthenticated, match="not valid"):
        read_access_token(f"{header}.{forged}.{signature}", KEY)


def test_token_signed_with_another_key_is_refused() -> None:
    token = issue_access_token(DOCTOR, "another-key-" + "z" * 32, 60)
    with pytest.raises(NotAuthenticated):
        read_access_token(token, KEY)


def test_unsigned_token_is_refused() -> None:
    token = jwt.encode(_claims(), None, algorithm="none")
    with pytest.raises(NotAuthenticated):
        read_access_token(token, KEY)


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": None},
        {"exp": None},
        {"iss": "someone-else"},
        {"iss": None},
        {"sub": "not-a-uuid"},
        {"role": "superuser"},
        {"org": "not-a-uuid"},
        {"org": 5},
        {"prac": ["x"]},
    ],
    ids=str,
)
def test_missing_or_malformed_claims_are_refused(changes: dict[str, object]) -> None:
    token = jwt.encode(_claims(**changes), KEY, "HS256")
    with pytest.raises(NotAuthenticated):
        read_access_token(token, KEY)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(NotAuthenticated):
        read_access_token(garbage, KEY)


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    first, first_hash = new_refresh_token()
    second, _ = new_refresh_token()
    assert first != second
    assert first_hash == hash_refresh_token(first) != first
    assert len(first_hash) == 64
