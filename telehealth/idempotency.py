"""Idempotency keys: a retried creating request gets its first answer and writes nothing.

A client that never heard the answer to a booking (the connection or the server died) sends
it again with the same ``Idempotency-Key``. The key is kept per account in
``idempotency_key``, with a digest of the request and the answer, in the same transaction as
what the request created: after a crash both exist or neither does.

The key's row is inserted *before* the use case runs (``INSERT ... ON CONFLICT DO NOTHING``):
on PostgreSQL a concurrent retry's insert waits on the unique key until the first transaction
ends, then finds its answer (or, if it rolled back, takes the key itself); SQLite runs one
writer at a time, so a retry sees the committed row. A request that fails writes nothing, its
key included, so its retry is tried afresh. Keys expire after
``TELEHEALTH_IDEMPOTENCY_KEY_TTL_S``; an expired key may be used again, and a daily job
deletes expired rows.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.db import UTCDateTime, table_of
from telehealth.errors import Conflict, InvalidInput
from telehealth.timers.handlers import TimerCall
from telehealth.timeutil import utcnow

KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # visible ASCII, as the IETF draft's examples use


class IdempotencyKey(SQLModel, table=True):
    """A key an account sent with a creating request, and the answer that request got."""

    __tablename__ = "idempotency_key"

    owner_id: uuid.UUID = Field(primary_key=True)  # the account or system client
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)  # SHA-256 of method, path and body
    status_code: int | None = None  # None only inside the transaction that answers
    body: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes


_KEYS = table_of(IdempotencyKey)
_TAKE = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_KEYS).on_conflict_do_nothing(
        index_elements=["owner_id", "key"]
    )
    for dialect in (postgresql, sqlite)
}


def request_digest(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join((method.encode(), path.encode(), body))).hexdigest()


async def _take(
    session: AsyncSession, owner_id: uuid.UUID, key: str, digest: str, now: datetime, ttl_s: int
) -> bool:
    statement = _TAKE[session.get_bind().dialect.name]
    values = {
        "owner_id": owner_id,
        "key": key,
        "request_hash": digest,
        "created_at": now,
        "expires_at": now + timedelta(seconds=ttl_s),
    }
    return bool((await session.exec(statement.values(values))).rowcount)


async def _renew_expired(
    session: AsyncSession, owner_id: uuid.UUID, key: str, digest: str, now: datetime, ttl_s: int
) -> bool:
    result = await session.exec(
        update(IdempotencyKey)
        .where(
            col(IdempotencyKey.owner_id) == owner_id,
            col(IdempotencyKey.key) == key,
            col(IdempotencyKey.expires_at) <= now,
        )
        .values(
            request_hash=digest,
            status_code=None,
            body=None,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def claim(
    session: AsyncSession, owner_id: uuid.UUID, key: str, digest: str, ttl_s: int
) -> Answer | None:
    """Take ``key`` for this request (``None``: go on and answer it), or the answer the first
    request with this key got. The same key with another request is 422."""
    now = utcnow()
    for _ in range(2):  # a second round if the stored row was renewed or purged meanwhile
        if await _take(session, owner_id, key, digest, now, ttl_s):
            return None
        stored = (
            await session.exec(
                select(IdempotencyKey)
                .where(IdempotencyKey.owner_id == owner_id, IdempotencyKey.key == key)
                .execution_options(populate_existing=True)
            )
        ).first()
        if stored is None:
            continue
        if stored.expires_at <= now:
            if await _renew_expired(session, owner_id, key, digest, now, ttl_s):
                return None
            continue
        if stored.request_hash != digest:
            raise InvalidInput(
                "This Idempotency-Key was already used for a different request (another body "
                "or address); send a new key with a new request"
            )
        if stored.status_code is None or stored.body is None:
            break
        return Answer(stored.status_code, stored.body.encode())
    raise Conflict("A request with this Idempotency-Key is being answered; retry in a moment")


async def keep(session: AsyncSession, owner_id: uuid.UUID, key: str, answer: Answer) -> None:
    """Store the answer on the key taken by ``claim``, in the request's transaction."""
    await session.exec(
        update(IdempotencyKey)
        .where(col(IdempotencyKey.owner_id) == owner_id, col(IdempotencyKey.key) == key)
        .values(status_code=answer.status_code, body=answer.body.decode())
        .execution_options(synchronize_session=False)
    )


async def purge_expired_keys(session: AsyncSession, call: TimerCall) -> None:
    """Daily job: forget keys past their expiry (their retries would be new requests anyway)."""
    await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) <= utcnow()))
