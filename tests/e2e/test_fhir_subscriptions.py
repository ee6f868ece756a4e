"""R4 rest-hook Subscriptions: an integrator subscribes over FHIR, changes made through /api
that match queue notifications in the same transaction, and the webhook delivery loop posts
them (signed, retried) to a real loopback HTTP receiver: the matching resource when the
subscription has a payload, an empty POST when it has none, with the subscriber's headers."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from telehealth.db import Database
from telehealth.notifications.delivery import NotificationDelivery
from telehealth.notifications.models import DeliveryState, Notification
from telehealth.notifications.webhooks import signature_matches
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.consult_support import accepted_request, me, own_patients, publish_week, service_of
from tests.e2e.fhir_support import (
    FHIR_JSON,
    WRITER_ID,
    WRITER_SECRET,
    add_writer_client,
    client_headers,
    fhir_json,
)
from tests.helpers import login
from tests.receivers import LOOPBACK, webhook_receiver

INTEGRATOR_SCOPES = "system/Subscription.crs system/Appointment.rs system/Task.rs"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receivers listen on loopback, which webhooks reach only when allowed by name."""
    return settings.model_copy(update={"webhook_allow_hosts": [LOOPBACK]})


def subscription(
    criteria: str, endpoint: str, payload: str | None = None, header: list[str] | None = None
) -> dict[str, object]:
    channel: dict[str, object] = {"type": "rest-hook", "endpoint": endpoint}
    if payload is not None:
        channel["payload"] = payload
    if header is not None:
        channel["header"] = header
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Đồng bộ lịch hội chẩn vào HIS",
        "criteria": criteria,
        "channel": channel,
    }


async def test_matching_changes_are_delivered_to_the_subscriber(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await add_writer_client(db, scopes=INTEGRATOR_SCOPES)
    his = {**(await client_headers(client, WRITER_ID, WRITER_SECRET)), "Content-Type": FHIR_JSON}
    cardio = await login(client, "bs.tim")
    specialist = (await me(client, cardio))["practitioner_id"]

    async with webhook_receiver([503, 200]) as (receiver, url):
        booked_criteria = subscription(
            "Appointment?status=booked",
            url,
            payload="application/fhir+json",
            header=["Authorization: Bearer his-feed-token", "X-His-Feed: appointments"],
        )
        created = await client.post("/fhir/Subscription", json=booked_criteria, headers=his)
        booked_sub = fhir_json(created, 201)
        assert booked_sub["status"] == "active"
        assert booked_sub["channel"]["payload"] == "application/fhir+json"
        assert booked_sub["channel"]["header"] == booked_criteria["channel"]["header"]  # type: ignore[index]
        secret = created.headers["X-Telehealth-Webhook-Secret"]
        created = await client.post(
            "/fhir/Subscription",
            json=subscription(
                f"Task?owner=Practitioner/{specialist}&status=accepted",
                url,
                header=["X-His-Feed: tasks"],
            ),
            headers=his,
        )
        task_sub = fhir_json(created, 201)
        assert "payload" not in task_sub["channel"]
        secrets = {
            "appointments": secret,
            "tasks": created.headers["X-Telehealth-Webhook-Secret"],
        }

        doctor = await login(client, "bs.xa1")
        role = await service_of(client, cardio)
        await publish_week(client, cardio, role["id"])
        patient = (await own_patients(client, doctor))[0]
        request = await accepted_request(client, doctor, cardio, patient)
        offered = (await client.get(f"/api/consults/{request['id']}/slots", headers=doctor)).json()
        booked = await client.post(
            "/api/appointments",
            json={"request_id": request["id"], "slot_id": offered[0]["id"]},
            headers=doctor,
        )
        assert booked.status_code == 201, booked.text
        appointment = booked.json()
        cancelled = await client.post(
            f"/api/appointments/{appointment['id']}/cancel",
            json={"reason": "Bệnh nhân đã chuyển viện"},
            headers=cardio,
        )
        assert cancelled.status_code == 200, cancelled.text

        async with db.unit_of_work() as session:
            queued = (
                await session.exec(
                    select(Notification).where(col(Notification.kind) == "fhir.subscription")
                )
            ).all()
        resources = sorted(
            (str(n.subscription_id), n.params["resource"], n.params["version"]) for n in queued
        )
        # The appointment was booked once (its cancelled version does not match); the Task
        # was 'accepted' with this owner three times: accepted, scheduled, unscheduled.
        appointment_ref, task_ref = f"Appointment/{appointment['id']}", f"Task/{request['id']}"
        assert [(s, r) for s, r, _ in resources if s == booked_sub["id"]] == [
            (booked_sub["id"], appointment_ref)
        ]
        assert [(s, r) for s, r, _ in resources if s == task_sub["id"]] == [
            (task_sub["id"], task_ref)
        ] * 3

        loop = NotificationDelivery(db, settings.model_copy(update={"timer_retry_base_s": 10}))
        now = utcnow()
        await loop.run_due(now)  # in-app notifications of the booking go out too
        await loop.run_due(now + timedelta(seconds=60))
        async with db.unit_of_work() as session:
            states = {
                (await session.get(Notification, n.id)).state  # type: ignore[union-attr]
                for n in queued
            }
        assert states == {DeliveryState.SENT}

    assert len(receiver.received) == 5  # one refused with 503 and retried
    assert len({h["x-telehealth-delivery"] for h, _ in receiver.received}) == 4
    assert len(set(secrets.values())) == 2
    feeds: dict[str, list[tuple[dict[str, str], bytes]]] = {"appointments": [], "tasks": []}
    for headers, body in receiver.received:
        feed = headers["x-his-feed"]
        assert signature_matches(secrets[feed], body, headers["x-telehealth-signature"])
        feeds[feed].append((headers, body))
    # Without a payload, R4 sends an empty POST: the receiver reads the resource itself.
    assert len(feeds["tasks"]) >= 3
    assert all(body == b"" and "content-type" not in h for h, body in feeds["tasks"])
    # With a payload, the body is the version that matched, as stored.
    headers, body = feeds["appointments"][-1]
    assert headers["content-type"].startswith("application/fhir+json")
    assert headers["authorization"] == "Bearer his-feed-token"
    resource = json.loads(body)
    assert resource["resourceType"] == "Appointment" and resource["id"] == appointment["id"]
    assert resource["status"] == "booked"
    version = await client.get(
        f"/fhir/Appointment/{resource['id']}/_history/{resource['meta']['versionId']}",
        headers=his,
    )
    assert version.content == body, "the stored version's bytes, unchanged"


async def test_only_scoped_clients_subscribe_to_what_they_may_search(
    client: httpx.AsyncClient, db: Database
) -> None:
    url = "http://127.0.0.1:9/hook"
    doctor = await login(client, "bs.xa1")
    person = await client.post(
        "/fhir/Subscription",
        json=subscription("Appointment?status=booked", url),
        headers={**doctor, "Content-Type": FHIR_JSON},
    )
    assert person.status_code == 403
    await add_writer_client(db, scopes="system/Subscription.crs system/Appointment.rs")
    his = {**(await client_headers(client, WRITER_ID, WRITER_SECRET)), "Content-Type": FHIR_JSON}
    not_scoped = await client.post(
        "/fhir/Subscription", json=subscription("Task?status=requested", url), headers=his
    )
    assert not_scoped.status_code == 403 and "system/Task" in not_scoped.text
    for criteria, field in (
        ("Appointment?date=ge2026-01-01", "criteria"),
        ("Appointment?colour=blue", "criteria"),
        ("Bogus?status=booked", "criteria"),
    ):
        bad = await client.post("/fhir/Subscription", json=subscription(criteria, url), headers=his)
        outcome = fhir_json(bad, 422)
        assert field in json.dumps(outcome), criteria
    for payload, header in (
        ("application/xml", None),
        (None, ["no colon here"]),
        (None, ["Content-Type: text/plain"]),
        (None, ["X-Evil: a\r\nInjected: yes"]),
    ):
        bad = await client.post(
            "/fhir/Subscription",
            json=subscription("Appointment?status=booked", url, payload, header),
            headers=his,
        )
        assert "Subscription.channel" in json.dumps(fhir_json(bad, 422)), (payload, header)
    websocket = subscription("Appointment?status=booked", url)
    websocket["channel"] = {"type": "websocket"}
    assert (await client.post("/fhir/Subscription", json=websocket, headers=his)).status_code == 422
    listed = fhir_json(await client.get("/fhir/Subscription", headers=his))
    assert not listed.get("entry"), "nothing refused was written"
