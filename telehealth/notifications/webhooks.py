"""Webhook deliveries: a JSON body signed with HMAC-SHA256 under the subscriber's secret.

The receiver recomputes ``hmac_sha256(secret, raw body)`` and compares it (in constant time)
with the ``X-Telehealth-Signature: sha256=<hex>`` header. ``X-Telehealth-Delivery`` is the
notification id: a delivery may be repeated (a lost response is retried), so receivers
de-duplicate on it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import httpx

from telehealth.notifications.targets import checked_target

SIGNATURE_HEADER = "X-Telehealth-Signature"
EVENT_HEADER = "X-Telehealth-Event"
DELIVERY_HEADER = "X-Telehealth-Delivery"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header)


def webhook_body(
    notification_id: uuid.UUID,
    kind: str,
    subject_id: uuid.UUID | None,
    params: dict[str, Any],
    created_at: datetime,
) -> bytes:
    """The event as sent: ids and the template values, never rendered text."""
    event = {
        "id": str(notification_id),
        "kind": kind,
        "subject_id": str(subject_id) if subject_id else None,
        "occurred_at": created_at.isoformat(),
        "params": params,
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str).encode()


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    notification_id: uuid.UUID,
    kind: str,
    body: bytes,
    *,
    allow_hosts: Iterable[str] = (),
    content_type: str | None = "application/json",
    extra_headers: dict[str, str] | None = None,
) -> None:
    """POST once; anything but a 2xx answer raises (the caller retries with backoff).
    ``content_type`` None sends no body type (an empty notification); ``extra_headers`` are
    the subscriber's own, sent before (and never instead of) the signature headers. The
    target is checked first (``targets.checked_target``: raises ``TargetRefused``)."""
    target = await checked_target(url, allow_hosts)
    headers = {
        **(extra_headers or {}),
        **target.headers,
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_HEADER: kind,
        DELIVERY_HEADER: str(notification_id),
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(
        target.url, content=body, headers=headers, extensions=target.extensions
    )
    if not response.is_success:
        raise httpx.HTTPStatusError(
            f"webhook receiver answered {response.status_code}",
            request=response.request,
            response=response,
        )
