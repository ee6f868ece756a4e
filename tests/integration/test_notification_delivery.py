"""Delivering notification rows for real: e-mail to a loopback SMTP server (aiosmtpd), signed
webhooks to a loopback HTTP receiver, with retries, backoff and dead letters."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from telehealth.auth.models import UserAccount
from telehealth.db import Database
from telehealth.notifications.delivery import NotificationDelivery
from telehealth.notifications.models import Channel, DeliveryState, Notification
from telehealth.notifications.service import notify, notify_subscribers
from telehealth.notifications.webhooks import signature_matches
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.conftest import free_port
from tests.helpers import assert_problem, login
from tests.receivers import LOOPBACK, smtp_server, webhook_receiver

REMINDER = {"start_at": "2026-11-25T03:00:00+00:00", "lead_minutes": 15}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receivers listen on loopback, which webhooks reach only when allowed by name."""
    return settings.model_copy(update={"webhook_allow_hosts": [LOOPBACK]})


async def person(db: Database, username: str, **changes: object) -> uuid.UUID:
    async with db.unit_of_work() as session:
        await session.exec(
            update(UserAccount).where(col(UserAccount.username) == username).values(**changes)
        )
        account = (
            await session.exec(select(UserAccount).where(UserAccount.username == username))
        ).one()
        return account.id


async def queue(db: Database, kind: str, **fields: object) -> uuid.UUID:
    async with db.unit_of_work() as session:
        return notify(session, kind, **fields).id  # type: ignore[arg-type]


async def row(db: Database, notification_id: uuid.UUID) -> Notification:
    async with db.unit_of_work() as session:
        found = await session.get(Notification, notification_id)
        assert found is not None
        return found


def delivery(db: Database, settings: Settings, **changes: object) -> NotificationDelivery:
    return NotificationDelivery(db, settings.model_copy(update=changes))


async def test_email_in_the_recipients_language_with_vietnam_time(
    db: Database, settings: Settings
) -> None:
    tim = await person(db, "bs.tim", email="tim@bvdk.example.vn", language="vi")
    nhi = await person(db, "bs.nhi", email="nhi@bvnhi.example.vn", language="en")
    for recipient in (tim, nhi):
        await queue(
            db,
            "appointment.reminder",
            recipient_id=recipient,
            channel=Channel.EMAIL,
            params=REMINDER,
        )
    async with smtp_server() as (inbox, port):
        sent = await delivery(db, settings, smtp_host="127.0.0.1", smtp_port=port).run_due()
    assert sent == 2
    by_address = {m["To"]: m for m in inbox.messages}
    vietnamese = by_address["tim@bvdk.example.vn"]
    assert vietnamese["Subject"] == "Nhắc lịch hội chẩn"
    assert "10:00 ngày 25/11/2026" in vietnamese.get_content()
    assert "còn 15 phút" in vietnamese.get_content()
    english = by_address["nhi@bvnhi.example.vn"]
    assert english["Subject"] == "Consult reminder"
    assert "25/11/2026 10:00" in english.get_content()


async def test_email_retried_with_backoff_while_smtp_is_down(
    db: Database, settings: Settings
) -> None:
    tim = await person(db, "bs.tim", email="tim@bvdk.example.vn")
    sent_id = await queue(db, "room.open", recipient_id=tim, channel=Channel.EMAIL, params=REMINDER)
    port = free_port()  # nothing listens there yet
    loop = delivery(db, settings, smtp_host="127.0.0.1", smtp_port=port, timer_retry_base_s=60)
    now = utcnow()

    assert await loop.run_due(now) == 0
    failed = await row(db, sent_id)
    assert failed.state == DeliveryState.FAILED and failed.attempts == 1
    assert failed.next_attempt_at == now + timedelta(seconds=60)
    assert failed.last_error

    async with smtp_server(port) as (inbox, _):
        assert await loop.run_due(now + timedelta(seconds=30)) == 0  # backing off
        assert await loop.run_due(now + timedelta(seconds=61)) == 1
    assert len(inbox.messages) == 1
    assert inbox.messages[0]["Subject"] == "Phòng hội chẩn đã mở"
    delivered = await row(db, sent_id)
    assert delivered.state == DeliveryState.SENT and delivered.attempts == 2


async def test_email_without_an_address_is_dead_at_once(db: Database, settings: Settings) -> None:
    tim = await person(db, "bs.tim", email=None)
    sent_id = await queue(db, "room.open", recipient_id=tim, channel=Channel.EMAIL)
    async with smtp_server() as (inbox, port):
        await delivery(db, settings, smtp_host="127.0.0.1", smtp_port=port).run_due()
    dead = await row(db, sent_id)
    assert dead.state == DeliveryState.DEAD
    assert dead.last_error == "Undeliverable: the recipient has no e-mail address"
    assert inbox.messages == []


async def test_email_waits_while_smtp_is_not_configured(db: Database, settings: Settings) -> None:
    tim = await person(db, "bs.tim", email="tim@bvdk.example.vn")
    sent_id = await queue(db, "room.open", recipient_id=tim, channel=Channel.EMAIL)
    assert await delivery(db, settings, smtp_host="").run_due() == 0
    waiting = await row(db, sent_id)
    assert waiting.state == DeliveryState.PENDING and waiting.attempts == 0


async def subscribe(client: httpx.AsyncClient, url: str, kinds: list[str]) -> dict[str, str]:
    admin = await login(client, "quantri")
    created = await client.post(
        "/api/admin/webhooks", json={"name": "HIS BVĐK", "url": url, "kinds": kinds}, headers=admin
    )
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


async def test_webhook_signed_and_retried_until_the_receiver_accepts(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    async with webhook_receiver([500, 503, 200]) as (receiver, url):
        subscription = await subscribe(client, url, ["appointment.booked"])
        subject = uuid.uuid4()
        async with db.unit_of_work() as session:
            queued = await notify_subscribers(
                session, "appointment.booked", subject_id=subject, params=REMINDER
            )
            ignored = await notify_subscribers(session, "room.open", subject_id=subject)
        assert len(queued) == 1 and ignored == []

        loop = delivery(db, settings, timer_retry_base_s=10)
        now = utcnow()
        assert await loop.run_due(now) == 0
        assert await loop.run_due(now + timedelta(seconds=5)) == 0  # backing off: not sent
        assert await loop.run_due(now + timedelta(seconds=11)) == 0
        assert await loop.run_due(now + timedelta(seconds=40)) == 1
        assert await loop.run_due(now + timedelta(days=1)) == 0

    assert len(receiver.received) == 3
    delivery_ids = {headers["x-telehealth-delivery"] for headers, _ in receiver.received}
    assert delivery_ids == {str(queued[0].id)}
    headers, body = receiver.received[-1]
    assert headers["x-telehealth-event"] == "appointment.booked"
    assert signature_matches(subscription["secret"], body, headers["x-telehealth-signature"])
    assert not signature_matches("another-secret", body, headers["x-telehealth-signature"])
    event = json.loads(body)
    assert event["kind"] == "appointment.booked" and event["subject_id"] == str(subject)
    assert event["params"] == REMINDER
    sent = await row(db, queued[0].id)
    assert sent.state == DeliveryState.SENT and sent.attempts == 3


async def test_webhook_dead_after_the_last_attempt_with_the_error_kept(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    async with webhook_receiver([500]) as (receiver, url):
        await subscribe(client, url, [])
        async with db.unit_of_work() as session:
            (queued,) = await notify_subscribers(session, "request.escalated")
        loop = delivery(db, settings, timer_retry_base_s=1, timer_max_attempts=2)
        now = utcnow()
        await loop.run_due(now)
        await loop.run_due(now + timedelta(seconds=2))
        await loop.run_due(now + timedelta(days=1))
    assert len(receiver.received) == 2
    dead = await row(db, queued.id)
    assert dead.state == DeliveryState.DEAD and dead.attempts == 2
    assert dead.last_error is not None and "answered 500" in dead.last_error


async def test_only_administrators_manage_webhooks(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.tim")
    refused = await client.post(
        "/api/admin/webhooks",
        json={"name": "x", "url": "http://127.0.0.1:9/x", "kinds": []},
        headers=doctor,
    )
    assert_problem(refused, 403)
    assert_problem(await client.get("/api/admin/webhooks", headers=doctor), 403)
    admin = await login(client, "quantri")
    bad = await client.post(
        "/api/admin/webhooks", json={"name": "x", "url": "ftp://nowhere"}, headers=admin
    )
    assert bad.status_code in (400, 422), bad.text
    assert (await client.get("/api/admin/webhooks", headers=admin)).json() == []
