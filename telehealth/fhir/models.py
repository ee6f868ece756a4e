"""Tables of the FHIR view: every version of every resource as stored JSON, plus search values.

``fhir_resource`` holds the current version of each resource (one primary-key lookup serves a
read), ``fhir_resource_version`` every version ever written (vread and ``_history``), and
``fhir_search_value`` the search values of current versions, extracted when they are written,
so that a search is a few index range scans whatever the size of the record.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from telehealth.db import PortableJSON, UTCDateTime
from telehealth.timeutil import utcnow

# Byte-wise order on PostgreSQL, so that prefix ranges (``value >= 'ngu' AND value < 'ngv'``)
# match what they match on SQLite, whatever the database's locale.
IndexedText = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")


class FhirResource(SQLModel, table=True):
    """The current version of one resource (a tombstone if it was deleted)."""

    __tablename__ = "fhir_resource"
    # The order a search pages its matches in (ties on last_updated broken by id).
    __table_args__ = (
        sa.Index(
            "ix_fhir_resource_type_updated_id", "resource_type", "last_updated", "resource_id"
        ),
    )

    resource_type: str = Field(max_length=40, primary_key=True)
    resource_id: str = Field(max_length=64, primary_key=True)
    version_id: int
    last_updated: datetime = Field(sa_type=UTCDateTime)
    deleted: bool = False
    text: str = Field(sa_type=sa.Text())


class FhirResourceVersion(SQLModel, table=True):
    """One version of one resource, kept for ever: a record is amended, never overwritten."""

    __tablename__ = "fhir_resource_version"
    __table_args__ = (sa.Index("ix_fhir_version_type_updated", "resource_type", "last_updated"),)

    resource_type: str = Field(max_length=40, primary_key=True)
    resource_id: str = Field(max_length=64, primary_key=True)
    version_id: int = Field(primary_key=True)
    last_updated: datetime = Field(sa_type=UTCDateTime)
    deleted: bool = False
    text: str = Field(sa_type=sa.Text())


class FhirSearchValue(SQLModel, table=True):
    """One search value of a current resource: a token (system, code), a folded string word,
    a reference (``Type/id``) or a date (ISO text, so ranges compare as strings).

    ``last_updated`` repeats the resource's, so that the index hands out the resources with
    one value newest first: a page of a search costs its page, not the number of matches."""

    __tablename__ = "fhir_search_value"
    __table_args__ = (
        sa.Index(
            "ix_fhir_search_ordered",
            "resource_type",
            "param",
            "value",
            "last_updated",
            "resource_id",
        ),
        sa.Index("ix_fhir_search_resource", "resource_type", "resource_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    resource_type: str = Field(max_length=40)
    resource_id: str = Field(max_length=64)
    param: str = Field(max_length=40)
    system: str = Field(default="", max_length=200)
    value: str = Field(sa_type=IndexedText)
    last_updated: datetime = Field(sa_type=UTCDateTime)


class FhirSubscription(SQLModel, table=True):
    """An R4 rest-hook Subscription: ``criteria`` (``Appointment?status=booked``) matched
    against every new version of ``resource_type``; deliveries go through the webhook
    subscription of the same id (its URL, secret, retries and dead letters)."""

    __tablename__ = "fhir_subscription"

    id: uuid.UUID = Field(foreign_key="webhook_subscription.id", primary_key=True)
    client_id: str = Field(max_length=120)
    resource_type: str = Field(max_length=40, index=True)
    criteria: str = Field(max_length=500)
    endpoint: str = Field(max_length=500)
    reason: str = Field(max_length=500)
    payload: str | None = Field(
        default=None, max_length=60, description="channel.payload: the body's mime type, or none"
    )
    headers: list[str] = Field(
        default_factory=list, sa_type=PortableJSON, description="channel.header, sent as is"
    )
    status: str = Field(default="active", max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
