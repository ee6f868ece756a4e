"""Delivering notification rows: claimed like timers, sent, marked sent or retried.

In-app: a small event ``{"kind", "id"}`` is published on channel ``user.<recipient id>`` (open
pages then fetch /api/notifications). E-mail: SMTP, to the recipient account's address (or the
row's own). Webhook: a signed POST to the subscription's URL, of the event envelope or of the
body and headers the row carries (``params["http"]``: FHIR rest-hook notifications). A failed attempt is retried with
exponential backoff and left ``dead`` with its error after ``timer_max_attempts``; a message
that can never go (no address, no recipient) is dead at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from telehealth.auth.models import UserAccount
from telehealth.db import Database, table_of
from telehealth.notifications.email import email_enabled, send_email
from telehealth.notifications.messages import render
from telehealth.notifications.models import (
    Channel,
    DeliveryState,
    Notification,
    WebhookSubscription,
)
from telehealth.notifications.targets import TargetRefused
from telehealth.notifications.webhooks import post_webhook, webhook_body
from telehealth.pubsub import user_channel
from telehealth.settings import Settings
from telehealth.timers.claims import claim_due, held_by, worker_name
from telehealth.timers.metrics import LoopMetrics
from telehealth.timers.rules import RetryPolicy, short_error
from telehealth.timeutil import utcnow

log = logging.getLogger("telehealth.notifications")

Publish = Callable[[Any, str], None]


class Undeliverable(Exception):
    """Retrying cannot help (no recipient, no address): the row goes dead at once."""


@dataclass(frozen=True)
class Outgoing:
    notification: Notification
    language: str
    email: str | None
    secret: str | None


class NotificationDelivery:
    """One delivery loop of one process."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        publish: Publish | None = None,
        metrics: LoopMetrics | None = None,
        worker: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.publish = publish
        self.metrics = metrics or LoopMetrics()
        self.worker = worker or worker_name()
        self.policy = RetryPolicy(
            settings.timer_max_attempts, settings.timer_retry_base_s, settings.timer_retry_max_s
        )
        self.channels = [Channel.IN_APP, Channel.WEBHOOK]
        if email_enabled(settings):
            self.channels.append(Channel.EMAIL)

    async def run_due(self, now: datetime | None = None) -> int:
        """Claim and attempt due deliveries until none is left; returns how many were sent."""
        sent = 0
        for _ in range(20):
            batch = await self.claim(now)
            if not batch:
                break
            sent += await self.deliver(batch, now)
            if len(batch) < self.settings.timer_batch_size:
                break
        return sent

    async def claim(self, now: datetime | None = None) -> list[Outgoing]:
        moment = now or utcnow()
        async with self.db.unit_of_work() as session:
            rows = await claim_due(
                session,
                Notification,
                ready_states=[DeliveryState.PENDING, DeliveryState.FAILED],
                claimed_state=DeliveryState.SENDING,
                due_column="next_attempt_at",
                now=moment,
                worker=self.worker,
                lease_s=self.settings.timer_lease_s,
                limit=self.settings.timer_batch_size,
                returning=[column.name for column in table_of(Notification).c],
                where=[table_of(Notification).c.channel.in_(self.channels)],
            )
            # The claimed rows as they now are (RETURNING): no second read of them.
            notifications = [Notification(**row._mapping) for row in rows]
            if not notifications:
                return []
            # Only e-mail needs the person (address, language), only webhooks their secret.
            recipients = {
                n.recipient_id
                for n in notifications
                if n.recipient_id and n.channel == Channel.EMAIL
            }
            people = (
                {
                    user.id: user
                    for user in await session.exec(
                        select(UserAccount).where(col(UserAccount.id).in_(recipients))
                    )
                }
                if recipients
                else {}
            )
            subscriptions = {n.subscription_id for n in notifications if n.subscription_id}
            secrets = (
                {
                    sub.id: sub.secret
                    for sub in await session.exec(
                        select(WebhookSubscription).where(
                            col(WebhookSubscription.id).in_(subscriptions)
                        )
                    )
                }
                if subscriptions
                else {}
            )
        self.metrics.claimed += len(notifications)
        outgoing = []
        for n in notifications:
            person = people.get(n.recipient_id) if n.recipient_id else None
            outgoing.append(
                Outgoing(
                    notification=n,
                    language=person.language if person else self.settings.default_language,
                    email=n.address or (person.email if person else None),
                    secret=secrets.get(n.subscription_id) if n.subscription_id else None,
                )
            )
        return outgoing

    async def deliver(self, batch: Sequence[Outgoing], now: datetime | None = None) -> int:
        limit = asyncio.Semaphore(10)
        # An HTTP client (its TLS context costs milliseconds of CPU) only for webhook batches.
        webhooks = any(item.notification.channel == Channel.WEBHOOK for item in batch)
        async with AsyncExitStack() as stack:
            http = (
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        timeout=self.settings.webhook_timeout_s,
                        # Each request goes to the address checked for it (targets.py), named
                        # in the URL: a kept connection could serve another name at that
                        # address, and a proxy from the environment would hide the address.
                        limits=httpx.Limits(max_keepalive_connections=0),
                        trust_env=False,
                    )
                )
                if webhooks
                else None
            )

            async def attempt(item: Outgoing) -> Exception | None:
                async with limit:
                    try:
                        await self._send(item, http)
                    except Exception as exc:
                        return exc
                    return None

            outcomes = await asyncio.gather(*(attempt(item) for item in batch))
        sent = [item.notification for item, error in zip(batch, outcomes, strict=True) if not error]
        if sent:
            await self._mark_sent(sent)
        for item, error in zip(batch, outcomes, strict=True):
            if error is not None:
                await self._record_failure(item.notification, error, now or utcnow())
        return len(sent)

    async def _send(self, item: Outgoing, http: httpx.AsyncClient | None) -> None:
        n = item.notification
        if n.channel == Channel.IN_APP:
            if n.recipient_id is None:
                raise Undeliverable("an in-app notification needs a recipient")
            if self.publish is not None:
                self.publish({"kind": n.kind, "id": str(n.id)}, user_channel(n.recipient_id))
        elif n.channel == Channel.EMAIL:
            if not item.email:
                raise Undeliverable("the recipient has no e-mail address")
            message = render(n.kind, n.params, item.language, self.settings.tz)
            await send_email(self.settings, item.email, message)
        else:
            if not n.address or item.secret is None:
                raise Undeliverable("a webhook needs an active subscription (URL and secret)")
            assert http is not None  # made for every batch that holds a webhook
            try:
                await self._post(http, n, item.secret)
            except TargetRefused as exc:
                raise Undeliverable(f"not sent: {exc}") from exc

    async def _post(self, http: httpx.AsyncClient, n: Notification, secret: str) -> None:
        assert n.address is not None
        allow_hosts = self.settings.webhook_allow_hosts
        own = n.params.get("http")
        if isinstance(own, dict):  # a row that carries its own request (FHIR rest-hook)
            await post_webhook(
                http,
                n.address,
                secret,
                n.id,
                n.kind,
                str(own.get("body", "")).encode(),
                allow_hosts=allow_hosts,
                content_type=own.get("content_type"),
                extra_headers=own.get("headers"),
            )
            return
        body = webhook_body(n.id, n.kind, n.subject_id, n.params, n.created_at)
        await post_webhook(http, n.address, secret, n.id, n.kind, body, allow_hosts=allow_hosts)

    async def _mark_sent(self, sent: Sequence[Notification]) -> None:
        sent_at = utcnow()
        async with self.db.unit_of_work() as session:
            result = await session.exec(
                update(table_of(Notification))
                .where(
                    held_by(Notification, [n.id for n in sent], self.worker, DeliveryState.SENDING)
                )
                .values(state=DeliveryState.SENT, sent_at=sent_at, lease_until=None)
            )
        self.metrics.lease_lost += len(sent) - result.rowcount
        for n in sent:
            self.metrics.record_fired(n.next_attempt_at, sent_at, self.settings.timer_late_s)

    async def _record_failure(self, n: Notification, exc: Exception, now: datetime) -> None:
        retry_at = (
            None if isinstance(exc, Undeliverable) else self.policy.next_attempt(n.attempts, now)
        )
        values: dict[str, Any] = {"last_error": short_error(exc), "lease_until": None}
        if retry_at is None:
            values["state"] = DeliveryState.DEAD
        else:
            values.update(state=DeliveryState.FAILED, next_attempt_at=retry_at)
        log.warning("notification %s (%s) not delivered: %s", n.id, n.channel, short_error(exc))
        async with self.db.unit_of_work() as session:
            result = await session.exec(
                update(table_of(Notification))
                .where(held_by(Notification, [n.id], self.worker, DeliveryState.SENDING))
                .values(**values)
            )
        if result.rowcount:
            self.metrics.failed += 1
            self.metrics.dead += retry_at is None
