"""Attachments of consult requests: photos and PDFs, checked, stored privately, audited.

The type is sniffed from the content (JPEG, PNG, PDF only), the size is capped, the bytes are
written under ``<data_dir>/attachments/`` with a random name and mode 0600, and they are only
ever served as downloads (``Content-Disposition: attachment``, ``nosniff``, a CSP sandbox) to
people who may read the request. A file written for a transaction that later fails stays on
disk unreferenced; that is harmless and can be swept.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_consult_action, check_consult_read
from telehealth.auth.principal import Caller
from telehealth.consults import rules
from telehealth.consults.models import ConsultAttachment, ConsultRequest
from telehealth.consults.parties import caller_services, parties
from telehealth.consults.service import load_request
from telehealth.errors import InvalidInput, InvalidTransition, NotFound
from telehealth.settings import Settings
from telehealth.storage import create_private_file, private_dir

MAX_PER_REQUEST = 20


def _path(settings: Settings, key: str) -> Path:
    return settings.data_dir / "attachments" / key[:2] / key


def stored_file(settings: Settings, attachment: ConsultAttachment) -> Path:
    """Where an attachment's bytes are kept (for readers that checked access themselves,
    such as FHIR ``Binary``)."""
    return _path(settings, attachment.storage_key)


def _write(path: Path, content: bytes) -> None:
    private_dir(path.parent)
    with os.fdopen(create_private_file(path), "wb") as file:
        file.write(content)


async def _readable_request(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, action: str
) -> ConsultRequest:
    request = await load_request(session, request_id)
    caller.note(
        action, "ConsultAttachment", patient_id=request.patient_id, detail=f"request {request_id}"
    )
    services = await caller_services(session, caller.principal)
    if action == "read":
        check_consult_read(caller.principal, parties(request), services)
    else:
        check_consult_action(caller.principal, "book", parties(request), services)
    return request


async def attach(
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    filename: str | None,
    content: bytes,
    settings: Settings,
) -> ConsultAttachment:
    """Keep a photo or PDF with the request (those who may book it may attach to it)."""
    request = await _readable_request(session, caller, request_id, "create")
    if request.status in rules.FINAL:
        raise InvalidTransition(f"The request is {request.status.value}; nothing can be added")
    if not content:
        raise InvalidInput.for_field("file", "is empty")
    if len(content) > settings.attachment_max_bytes:
        limit = settings.attachment_max_bytes // (1024 * 1024)
        raise InvalidInput.for_field("file", f"is larger than {limit} MiB")
    media_type, extension = rules.sniff_media_type(content[:16])
    count = len(
        (
            await session.exec(
                select(ConsultAttachment.id).where(ConsultAttachment.request_id == request.id)
            )
        ).all()
    )
    if count >= MAX_PER_REQUEST:
        raise InvalidInput.for_field("file", f"a request holds at most {MAX_PER_REQUEST} files")
    key = secrets.token_urlsafe(32)
    attachment = ConsultAttachment(
        request_id=request.id,
        filename=rules.safe_filename(filename, extension),
        media_type=media_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        storage_key=key,
        uploaded_by=caller.principal.id,
    )
    session.add(attachment)
    await session.flush()
    await asyncio.to_thread(_write, _path(settings, key), content)
    caller.notes[-1].entity_id = str(attachment.id)
    return attachment


async def list_attachments(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID
) -> Sequence[ConsultAttachment]:
    await _readable_request(session, caller, request_id, "read")
    rows = await session.exec(
        select(ConsultAttachment)
        .where(ConsultAttachment.request_id == request_id)
        .order_by(col(ConsultAttachment.created_at))
    )
    return rows.all()


async def read_attachment(
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    attachment_id: uuid.UUID,
    settings: Settings,
) -> tuple[ConsultAttachment, bytes]:
    await _readable_request(session, caller, request_id, "read")
    caller.notes[-1].entity_id = str(attachment_id)
    attachment = await session.get(ConsultAttachment, attachment_id)
    if attachment is None or attachment.request_id != request_id:
        raise NotFound("No such attachment")
    content = await asyncio.to_thread(_path(settings, attachment.storage_key).read_bytes)
    return attachment, content
