"""A notification is a row: who gets it, by which channel, what it says, how delivery went.

Use cases write notifications in their own transaction; delivery (SMTP, webhook POST, push to
open pages) happens afterwards, retried with backoff, so a lost connection loses nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from telehealth.db import PortableJSON, UTCDateTime
from telehealth.models import enum_type, new_id
from telehealth.timeutil import utcnow


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a process, under a lease
    SENT = "sent"
    FAILED = "failed"  # will be retried
    DEAD = "dead"  # gave up
    CANCELLED = "cancelled"


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_recipient", "recipient_id", "created_at"),
        Index("ix_notification_due", "state", "next_attempt_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    recipient_id: uuid.UUID | None = Field(default=None, description="user account, if a person")
    address: str | None = Field(default=None, max_length=500, description="e-mail or webhook URL")
    channel: Channel = Field(sa_type=enum_type(Channel))
    kind: str = Field(max_length=40, description="what happened, e.g. appointment.booked")
    subject_id: uuid.UUID | None = Field(default=None, index=True)
    params: dict[str, Any] = Field(
        default_factory=dict,
        sa_type=PortableJSON,
        description="values the message template is filled with",
    )
    state: DeliveryState = Field(
        default=DeliveryState.PENDING, sa_type=enum_type(DeliveryState, 12)
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=2000)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    subscription_id: uuid.UUID | None = Field(
        default=None, foreign_key="webhook_subscription.id", index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookSubscription(SQLModel, table=True):
    """A system that receives events by HTTP POST, signed with its own secret.

    The secret is kept as such (not hashed): the service needs it to sign every delivery.
    ``kinds`` lists the event kinds wanted; empty means all of them.
    """

    __tablename__ = "webhook_subscription"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=120)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=200)
    kinds: list[str] = Field(default_factory=list, sa_type=PortableJSON)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
