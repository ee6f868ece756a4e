"""Webhooks never reach the service's own network unless a host is allowed by name: refused
when registered (over /api and as a FHIR Subscription), and again when delivered."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from telehealth.db import Database
from telehealth.notifications.delivery import NotificationDelivery
from telehealth.notifications.models import DeliveryState, Notification, WebhookSubscription
from telehealth.notifications.service import notify_subscribers
from telehealth.notifications.targets import pinned
from telehealth.settings import Settings
from tests.e2e.fhir_support import (
    FHIR_JSON,
    WRITER_ID,
    WRITER_SECRET,
    add_writer_client,
    client_headers,
    fhir_json,
)
from tests.helpers import assert_problem, login
from tests.receivers import LOOPBACK, webhook_receiver

INTERNAL = [
    "http://127.0.0.1:8080/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8080/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:192.168.1.1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://localhost:8080/hook",  # a name that resolves to loopback
]


@pytest.fixture
def allow_hosts() -> list[str]:
    return []


@pytest.fixture
def settings(settings: Settings, allow_hosts: list[str]) -> Settings:
    return settings.model_copy(update={"webhook_allow_hosts": allow_hosts})


async def _register(client: httpx.AsyncClient, url: str) -> httpx.Response:
    admin = await login(client, "quantri")
    return await client.post(
        "/api/admin/webhooks", json={"name": "HIS", "url": url, "kinds": []}, headers=admin
    )


async def test_internal_targets_are_refused_when_registered(client: httpx.AsyncClient) -> None:
    for url in INTERNAL:
        body = assert_problem(await _register(client, url), 422, field="url")
        assert "webhook_allow_hosts" in str(body), (url, body)
    admin = await login(client, "quantri")
    assert (await client.get("/api/admin/webhooks", headers=admin)).json() == []


async def test_a_name_that_does_not_resolve_is_refused(client: httpx.AsyncClient) -> None:
    body = assert_problem(await _register(client, "http://no-such-host.invalid/hook"), 422)
    assert "does not resolve" in str(body)


async def test_fhir_subscription_to_an_internal_endpoint_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    await add_writer_client(db, scopes="system/Subscription.crs system/Appointment.rs")
    his = {**(await client_headers(client, WRITER_ID, WRITER_SECRET)), "Content-Type": FHIR_JSON}
    for endpoint in ("http://169.254.169.254/latest/meta-data/", "http://localhost:9/x"):
        subscription = {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "sync",
            "criteria": "Appointment?status=booked",
            "channel": {"type": "rest-hook", "endpoint": endpoint},
        }
        refused = await client.post("/fhir/Subscription", json=subscription, headers=his)
        outcome = fhir_json(refused, 422)
        assert "Subscription.channel.endpoint" in str(outcome), outcome
    assert not fhir_json(await client.get("/fhir/Subscription", headers=his)).get("entry")


@pytest.mark.parametrize("allow_hosts", [["LocalHost"]])
async def test_a_host_allowed_by_name_is_registered_and_delivered_to(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    async with webhook_receiver([200]) as (receiver, url):
        named = url.replace("127.0.0.1", "localhost")
        created = await _register(client, named)
        assert created.status_code == 201, created.text
        # Allowed by name only: the same receiver by its address is still refused.
        assert_problem(await _register(client, url), 422, field="url")
        async with db.unit_of_work() as session:
            await notify_subscribers(session, "request.escalated")
        assert await NotificationDelivery(db, settings).run_due() == 1
    assert len(receiver.received) == 1


async def test_delivery_is_refused_when_the_name_resolves_internally_by_then(
    db: Database, settings: Settings
) -> None:
    """Registered while the name pointed elsewhere (written here directly); by delivery
    time it resolves to loopback: nothing is sent, and the row is dead with the reason."""
    async with webhook_receiver([200]) as (receiver, url):
        async with db.unit_of_work() as session:
            session.add(
                WebhookSubscription(
                    name="HIS", url=url.replace("127.0.0.1", "localhost"), secret="s", kinds=[]
                )
            )
        async with db.unit_of_work() as session:
            (queued,) = await notify_subscribers(session, "request.escalated")
        assert await NotificationDelivery(db, settings).run_due() == 0
    assert receiver.received == []
    async with db.unit_of_work() as session:
        dead = await session.get(Notification, queued.id)
    assert dead is not None and dead.state == DeliveryState.DEAD
    assert dead.last_error is not None and "loopback" in dead.last_error


async def test_a_pinned_request_reaches_the_checked_address_under_its_name() -> None:
    """What delivery sends once a name's address is checked: to that address, not to a
    second lookup of the name (which does not even resolve here), with the name as Host."""
    async with webhook_receiver([200]) as (receiver, url):
        port = httpx.URL(url).port
        named = httpx.URL(f"http://his.example.invalid:{port}/hooks/telehealth")
        target = pinned(named, ipaddress.ip_address(LOOPBACK))
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.post(target.url, headers=target.headers, content=b"{}")
    assert answer.status_code == 200
    ((headers, _),) = receiver.received
    assert headers["host"] == f"his.example.invalid:{port}"
