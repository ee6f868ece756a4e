"""``Idempotency-Key`` for the creating requests: one helper the controllers answer through.

A controller that creates something (a booking, a consult request, a patient, an attachment)
declares ``idempotent: IdempotentDep`` and returns ``await idempotent.answer(payload, create)``;
the rules are in ``telehealth/idempotency.py`` and docs/api.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import HeaderParameter
from litestar.serialization import encode_json
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.principal import Caller
from telehealth.idempotency import KEY_PATTERN, Answer, claim, keep, request_digest
from telehealth.settings import Settings

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="Any unique string (a UUID is best), 1-255 visible ASCII characters. A "
        "retry with the same key and body gets the first answer and creates nothing; the same "
        "key with another body is 422. Keys are per account and expire after "
        "TELEHEALTH_IDEMPOTENCY_KEY_TTL_S (24 h).",
    ),
]


def _response(answer: Answer, *, replayed: bool = False) -> Response[Any]:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(
        answer.body, status_code=answer.status_code, media_type="application/json", headers=headers
    )


@dataclass(frozen=True)
class Idempotent:
    """A creating request, answered once per ``Idempotency-Key`` of its account."""

    key: str | None
    method: str
    path: str
    session: AsyncSession
    caller: Caller
    ttl_s: int

    async def answer(
        self,
        payload: BaseModel | bytes,
        create: Callable[[], Awaitable[BaseModel]],
        status_code: int = 201,
    ) -> Response[Any]:
        """``create()``'s result as JSON, or, for a retry, the first answer. ``payload`` is
        what the request asks (the parsed body; for uploads, the file's name and bytes): a
        retry is recognised by it, whatever the bytes' layout (JSON spacing, multipart
        boundaries)."""
        if self.key is None:
            return _response(Answer(status_code, await _encoded(create)))
        body = payload if isinstance(payload, bytes) else payload.model_dump_json().encode()
        digest = request_digest(self.method, self.path, body)
        owner = self.caller.principal.id
        stored = await claim(self.session, owner, self.key, digest, self.ttl_s)
        if stored is not None:
            self.caller.note("replay", "IdempotencyKey", detail=f"{self.method} {self.path}")
            return _response(stored, replayed=True)
        answer = Answer(status_code, await _encoded(create))
        await keep(self.session, owner, self.key, answer)
        return _response(answer)


async def _encoded(create: Callable[[], Awaitable[BaseModel]]) -> bytes:
    # As litestar encodes a returned schema, so that the first answer and replays are the
    # same bytes.
    return encode_json((await create()).model_dump(mode="json"))


def provide_idempotent(
    request: Request[Any, Any, Any],
    session: NamedDependency[AsyncSession],
    caller: NamedDependency[Caller],
    settings: NamedDependency[Settings],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Idempotent:
    return Idempotent(
        key=idempotency_key,
        method=request.method,
        path=request.scope["path"],
        session=session,
        caller=caller,
        ttl_s=settings.idempotency_key_ttl_s,
    )


IdempotentDep = NamedDependency[Idempotent]
