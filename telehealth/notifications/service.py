"""Notifications: queued by use cases inside their transaction, read by their recipients,
and the webhook subscriptions that receive events."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_account_admin
from telehealth.auth.principal import Caller
from telehealth.db import insert_rows, table_of
from telehealth.errors import InvalidInput, NotFound, PermissionDenied
from telehealth.models import new_id
from telehealth.notifications.messages import render
from telehealth.notifications.models import (
    Channel,
    DeliveryState,
    Notification,
    WebhookSubscription,
)
from telehealth.notifications.targets import TargetRefused, checked_target
from telehealth.timers.metrics import LoopMetrics, timer_backlog
from telehealth.timeutil import utcnow


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


async def notify_people(
    session: AsyncSession,
    kind: str,
    recipient_ids: Iterable[uuid.UUID],
    *,
    subject_id: uuid.UUID | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Queue one in-app message per person with one multi-row INSERT (the booking hot path)."""
    now = utcnow()
    await insert_rows(
        session,
        table_of(Notification),
        [
            {
                "id": new_id(),
                "recipient_id": recipient,
                "address": None,
                "channel": Channel.IN_APP,
                "kind": kind,
                "subject_id": subject_id,
                "params": params or {},
                "state": DeliveryState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "lease_until": None,
                "claimed_by": None,
                "subscription_id": None,
                "created_at": now,
                "sent_at": None,
                "read_at": None,
            }
            for recipient in recipient_ids
        ],
    )


async def notify_subscribers(
    session: AsyncSession,
    kind: str,
    *,
    subject_id: uuid.UUID | None = None,
    params: dict[str, Any] | None = None,
) -> list[Notification]:
    """Queue one webhook delivery per active subscription that wants ``kind``."""
    subscriptions = (
        await session.exec(
            select(WebhookSubscription).where(col(WebhookSubscription.active).is_(True))
        )
    ).all()
    queued = []
    for subscription in subscriptions:
        if subscription.kinds and kind not in subscription.kinds:
            continue
        notification = notify(
            session,
            kind,
            subject_id=subject_id,
            channel=Channel.WEBHOOK,
            address=subscription.url,
            params=params,
        )
        notification.subscription_id = subscription.id
        queued.append(notification)
    return queued


@dataclass(frozen=True)
class InAppMessage:
    """An in-app notification as its recipient reads it, in their language."""

    id: uuid.UUID
    kind: str
    subject_id: uuid.UUID | None
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


def _require_person(caller: Caller) -> uuid.UUID:
    if not caller.principal.is_user:
        raise PermissionDenied("System clients have no in-app notifications; use webhooks")
    return caller.principal.id


async def list_notifications(
    session: AsyncSession, caller: Caller, *, unread_only: bool, limit: int, offset: int
) -> list[InAppMessage]:
    """The caller's own in-app notifications, newest first."""
    me = _require_person(caller)
    statement = select(Notification).where(
        col(Notification.recipient_id) == me, col(Notification.channel) == Channel.IN_APP
    )
    if unread_only:
        statement = statement.where(col(Notification.read_at).is_(None))
    statement = statement.order_by(col(Notification.created_at).desc(), col(Notification.id))
    rows = (await session.exec(statement.offset(offset).limit(limit))).all()
    language = caller.principal.language
    return [
        InAppMessage(
            id=row.id,
            kind=row.kind,
            subject_id=row.subject_id,
            title=(message := render(row.kind, row.params, language)).subject,
            body=message.body,
            created_at=row.created_at,
            read_at=row.read_at,
        )
        for row in rows
    ]


async def mark_read(session: AsyncSession, caller: Caller, notification_id: uuid.UUID) -> None:
    """Mark one of the caller's notifications read (someone else's is not found)."""
    me = _require_person(caller)
    owned = (
        await session.exec(
            select(Notification.id).where(
                col(Notification.id) == notification_id,
                col(Notification.recipient_id) == me,
                col(Notification.channel) == Channel.IN_APP,
            )
        )
    ).first()
    if owned is None:
        raise NotFound("No such notification among yours")
    await session.exec(
        update(Notification)
        .where(col(Notification.id) == notification_id, col(Notification.read_at).is_(None))
        .values(read_at=utcnow())
    )


async def create_webhook_subscription(
    session: AsyncSession,
    caller: Caller,
    *,
    name: str,
    url: str,
    kinds: list[str],
    allow_hosts: Iterable[str],
) -> WebhookSubscription:
    """Register a receiver; its signing secret is generated here and shown once."""
    check_account_admin(caller.principal)
    await check_receiver(url, allow_hosts, field="url")
    subscription = WebhookSubscription(
        name=name, url=url, kinds=sorted(set(kinds)), secret=secrets.token_urlsafe(32)
    )
    session.add(subscription)
    caller.note("create", "WebhookSubscription", subscription.id)
    return subscription


async def check_receiver(url: str, allow_hosts: Iterable[str], *, field: str) -> None:
    """Refuse a receiver the service may not reach (``targets.checked_target``), naming
    ``field``; the address is checked again at each delivery."""
    try:
        await checked_target(url, allow_hosts)
    except TargetRefused as exc:
        raise InvalidInput.for_field(field, str(exc)) from exc


async def list_webhook_subscriptions(
    session: AsyncSession, caller: Caller
) -> list[WebhookSubscription]:
    check_account_admin(caller.principal)
    statement = select(WebhookSubscription).order_by(col(WebhookSubscription.created_at))
    return list((await session.exec(statement)).all())


async def timer_metrics(
    session: AsyncSession,
    caller: Caller,
    timers: LoopMetrics | None,
    deliveries: LoopMetrics | None,
) -> dict[str, Any]:
    """For administrators: the backlog in the database (all processes) and this process's
    counters (each process keeps its own; ``None`` where the loops are disabled here)."""
    check_account_admin(caller.principal)
    return {
        "database": await timer_backlog(session, utcnow()),
        "this_process": {
            "timers": _counters(timers),
            "notifications": _counters(deliveries),
        },
    }


def _counters(metrics: LoopMetrics | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    return {
        "claimed": metrics.claimed,
        "fired": metrics.fired,
        "late": metrics.late,
        "failed": metrics.failed,
        "dead": metrics.dead,
        "lease_lost": metrics.lease_lost,
        "lag_s": metrics.lag_percentiles(),
    }
