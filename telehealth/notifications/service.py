"""Writing notifications: called by use cases, inside their transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.notifications.models import Channel, Notification


def notify(
    session: AsyncSession,
    kind: str,
    *,
    recipient_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
    channel: Channel = Channel.IN_APP,
    address: str | None = None,
    params: dict[str, Any] | None = None,
) -> Notification:
    """Queue one message; delivery happens after the transaction commits."""
    notification = Notification(
        kind=kind,
        recipient_id=recipient_id,
        subject_id=subject_id,
        channel=channel,
        address=address,
        params=params or {},
    )
    session.add(notification)
    return notification
