"""R4 rest-hook Subscriptions: a system client subscribes to criteria such as
``Appointment?status=booked`` or ``Task?owner=Practitioner/<id>``; every new version that
matches queues a webhook notification row in the same transaction, delivered (signed, retried,
dead-lettered) by the notifications area's delivery loop.

The notification is what R4 prescribes: with ``channel.payload`` the matching version itself
in that mime type (its stored text, as it was when it matched), without it an empty POST; each
``channel.header`` is sent as a header.

A FHIR Subscription is stored as a ``webhook_subscription`` (URL, generated signing secret, the
kind ``fhir.subscription``) plus a ``fhir_subscription`` row of the same id (criteria, status),
which is mapped to the Subscription resource like any other row.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import require_scope
from telehealth.auth.principal import Caller
from telehealth.directory.identifiers import fold_name
from telehealth.errors import InvalidInput, PermissionDenied
from telehealth.fhir.models import FhirSubscription
from telehealth.fhir.search import _reference_value
from telehealth.fhir.search_params import SEARCH_PARAMS, extract_values
from telehealth.fhir.store import StoredVersion, instant
from telehealth.notifications.models import Channel, Notification, WebhookSubscription
from telehealth.notifications.service import check_receiver

Resource = dict[str, Any]
KIND = "fhir.subscription"
_FIELD = "Subscription.criteria"


def parse_criteria(criteria: str) -> tuple[str, list[tuple[str, str]]]:
    """``Type?param=value&...``: only token, reference and string parameters, without
    modifiers, so that a change can be matched from its extracted values alone."""
    resource_type, _, query = criteria.partition("?")
    params = SEARCH_PARAMS.get(resource_type)
    if params is None or resource_type == "Subscription":
        raise InvalidInput.for_field(_FIELD, f"cannot subscribe to '{resource_type}'")
    pairs = parse_qsl(query, keep_blank_values=True)
    for name, value in pairs:
        param = params.get(name)
        if param is None or param.kind == "date":
            usable = ", ".join(n for n, p in params.items() if p.kind != "date")
            raise InvalidInput.for_field(
                _FIELD, f"'{name}' cannot be used in criteria of {resource_type}; use {usable}"
            )
        if not value:
            raise InvalidInput.for_field(_FIELD, f"'{name}' needs a value")
    return resource_type, pairs


def matches(
    resource_type: str, values: Sequence[tuple[str, str, str]], pairs: Sequence[tuple[str, str]]
) -> bool:
    """Whether a version with these extracted (param, system, value) rows meets every
    criterion (alternatives separated by commas), as the same search would."""
    for name, wanted in pairs:
        param = SEARCH_PARAMS[resource_type][name]
        mine = [(system, value) for p, system, value in values if p == name]
        found = False
        for alternative in wanted.split(","):
            if param.kind == "token":
                system, bar, code = alternative.rpartition("|")
                found = any(v == code and (not bar or s == system) for s, v in mine)
            elif param.kind == "reference":
                reference = _reference_value(param, alternative.strip())
                found = any(v == reference for _, v in mine)
            else:
                words = fold_name(alternative).split()
                found = bool(words) and all(any(v.startswith(w) for _, v in mine) for w in words)
            if found:
                break
        if not found:
            return False
    return True


PAYLOAD_TYPES = ("application/fhir+json", "application/json")
_RESERVED_HEADERS = ("content-type", "content-length", "host", "transfer-encoding", "x-telehealth-")
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}):[ \t]*([\x20-\x7e]{0,1000})$")


def _payload(channel: Resource) -> str | None:
    """``channel.payload``: a JSON mime type (its parameters such as ``fhirVersion`` are
    accepted and dropped), or nothing for an empty notification."""
    payload = channel.get("payload")
    if payload is None:
        return None
    mime = str(payload).split(";")[0].strip().lower()
    if mime not in PAYLOAD_TYPES:
        raise InvalidInput.for_field(
            "Subscription.channel.payload",
            f"send resources as {' or '.join(PAYLOAD_TYPES)}, or leave it out for an empty POST",
        )
    return mime


def _headers(channel: Resource) -> list[str]:
    """``channel.header``: ``Name: value`` lines sent with every notification (for example the
    receiver's own ``Authorization``); the ones the delivery sets itself are refused."""
    headers = channel.get("header") or []
    if not isinstance(headers, list) or len(headers) > 10:
        raise InvalidInput.for_field("Subscription.channel.header", "give at most 10 headers")
    for line in headers:
        found = _HEADER.fullmatch(str(line))
        if found is None:
            raise InvalidInput.for_field(
                "Subscription.channel.header", f"'{line}' is not a 'Name: value' header"
            )
        if found.group(1).lower().startswith(_RESERVED_HEADERS):
            raise InvalidInput.for_field(
                "Subscription.channel.header", f"{found.group(1)} is set by the service"
            )
    return [str(line) for line in headers]


def _endpoint(resource: Resource) -> str:
    channel = resource.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise InvalidInput.for_field("Subscription.channel.type", "only rest-hook is supported")
    endpoint = str(channel.get("endpoint") or "")
    if not endpoint.startswith(("http://", "https://")) or len(endpoint) > 500:
        raise InvalidInput.for_field(
            "Subscription.channel.endpoint", "give the receiver's http(s) URL"
        )
    return endpoint


async def create_subscription(
    session: AsyncSession, caller: Caller, resource: Resource, allow_hosts: Iterable[str]
) -> tuple[FhirSubscription, str]:
    """Register a rest-hook subscription; returns it and its signing secret (shown once).
    Its endpoint must be one the service may reach (``allow_hosts``: ``check_receiver``)."""
    principal = caller.principal
    if principal.kind != "client":
        raise PermissionDenied("Subscriptions are for system clients (client credentials)")
    require_scope(principal, "Subscription", "c")
    if resource.get("resourceType") != "Subscription":
        raise InvalidInput.for_field("resourceType", "expected a Subscription")
    if resource.get("status", "requested") not in ("requested", "active"):
        raise InvalidInput.for_field("Subscription.status", "create it as requested or active")
    reason = str(resource.get("reason") or "").strip()
    if not reason:
        raise InvalidInput.for_field("Subscription.reason", "say why (R4 requires a reason)")
    criteria = str(resource.get("criteria") or "")
    resource_type, _ = parse_criteria(criteria)
    require_scope(principal, resource_type, "s")  # it may learn only what it may search
    endpoint = _endpoint(resource)
    await check_receiver(endpoint, allow_hosts, field="Subscription.channel.endpoint")
    payload, headers = _payload(resource["channel"]), _headers(resource["channel"])
    secret = secrets.token_urlsafe(32)
    webhook = WebhookSubscription(
        name=f"FHIR Subscription of {principal.name}"[:120],
        url=endpoint,
        secret=secret,
        kinds=[KIND],
    )
    session.add(webhook)
    await session.flush()  # the subscription row refers to it
    subscription = FhirSubscription(
        id=webhook.id,
        client_id=str(principal.id),
        resource_type=resource_type,
        criteria=criteria,
        endpoint=endpoint,
        reason=reason[:500],
        payload=payload,
        headers=headers,
    )
    session.add(subscription)
    caller.note("create", "Subscription", subscription.id, detail=criteria)
    await session.flush()
    return subscription, secret


def subscription_resource(subscription: FhirSubscription, _session: Session) -> Resource:
    channel: Resource = {"type": "rest-hook", "endpoint": subscription.endpoint}
    if subscription.payload:
        channel["payload"] = subscription.payload
    if subscription.headers:
        channel["header"] = list(subscription.headers)
    return {
        "resourceType": "Subscription",
        "id": str(subscription.id),
        "status": subscription.status,
        "reason": subscription.reason,
        "criteria": subscription.criteria,
        "channel": channel,
    }


_SUBSCRIPTIONS: sa.Table = FhirSubscription.__table__  # type: ignore[attr-defined]
# Built once, a Core statement with no list parameter (so its compiled form is cached): every
# write asks, and active subscriptions are few, so their types are filtered here.
_ACTIVE_SUBSCRIPTIONS = sa.select(*_SUBSCRIPTIONS.c).where(_SUBSCRIPTIONS.c.status == "active")


def rest_hook_request(subscription: FhirSubscription, version: StoredVersion) -> dict[str, Any]:
    """The HTTP request R4 prescribes for one notification: the version's stored text in the
    payload's mime type, or an empty body; the subscriber's headers as given."""
    headers = dict(line.split(":", 1) for line in subscription.headers)
    request: dict[str, Any] = {"headers": {k.strip(): v.strip() for k, v in headers.items()}}
    if subscription.payload:
        request["content_type"] = f"{subscription.payload}; charset=utf-8"
        request["body"] = version.text
    return request


def queue_notifications(session: Session, stored: Sequence[StoredVersion]) -> int:
    """One webhook notification per (active subscription, matching new version), written in
    the transaction that made the version."""
    types = {s.resource_type for s in stored if not s.deleted}
    if not types:
        return 0
    subscriptions = [
        FhirSubscription(**row._mapping)
        for row in session.connection().execute(_ACTIVE_SUBSCRIPTIONS)
        if row.resource_type in types
    ]
    queued = 0
    for subscription in subscriptions:
        _, pairs = parse_criteria(subscription.criteria)
        for version in stored:
            if version.deleted or version.resource_type != subscription.resource_type:
                continue
            values = extract_values(json.loads(version.text))
            if not matches(version.resource_type, values, pairs):
                continue
            reference = f"{version.resource_type}/{version.resource_id}"
            session.add(
                Notification(
                    kind=KIND,
                    channel=Channel.WEBHOOK,
                    address=subscription.endpoint,
                    subscription_id=subscription.id,
                    subject_id=_uuid_or_none(version.resource_id),
                    params={
                        "subscription": f"Subscription/{subscription.id}",
                        "resource": reference,
                        "version": str(version.version_id),
                        "versioned": f"{reference}/_history/{version.version_id}",
                        "lastUpdated": instant(version.last_updated),
                        "http": rest_hook_request(subscription, version),
                    },
                )
            )
            queued += 1
    return queued


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
