"""``Binary/{id}``: the bytes behind a DocumentReference, a consult attachment (photo, PDF) or
a recording of the video session (Matroska, kept under the data directory).

Those who may read the DocumentReference of the same id may read its Binary (the same rule as
the attachment download of /api, ``access.consult_visible``), and every read is audited with
the patient. A client asking for FHIR JSON (``Accept: application/fhir+json`` or ``_format``)
gets a Binary resource with the content in base64; anyone else gets the bytes themselves with
their content type, always as a download, as R4 recommends for Binary reads.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import require_scope
from telehealth.auth.principal import Caller
from telehealth.consults.attachments import stored_file
from telehealth.consults.models import ConsultAttachment
from telehealth.errors import BadRequest, NotFound
from telehealth.fhir import store
from telehealth.fhir.consult_access import check_consult_resource, check_person_may_use
from telehealth.rtc.models import Recording
from telehealth.settings import Settings

RECORDING_TYPE = "video/x-matroska"


@dataclass(frozen=True)
class BinaryContent:
    binary_id: str
    content_type: str
    filename: str
    size: int
    data: bytes | None = None  # an attachment, read whole (capped at upload)
    path: Path | None = None  # a recording, streamed from disk

    def as_resource(self, settings: Settings) -> dict[str, Any]:
        """The FHIR Binary (base64); for content no larger than an attachment may be."""
        if self.size > settings.attachment_max_bytes:
            raise BadRequest(
                f"Binary/{self.binary_id} is {self.size} bytes: ask for the bytes themselves "
                f"(Accept: {self.content_type}) rather than base64 in JSON"
            )
        data = self.data if self.data is not None else _read(self.path)
        return {
            "resourceType": "Binary",
            "id": self.binary_id,
            "contentType": self.content_type,
            "data": base64.b64encode(data).decode(),
        }


def _read(path: Path | None) -> bytes:
    assert path is not None
    return path.read_bytes()


def _missing(binary_id: str) -> NotFound:
    return NotFound(f"No Binary with id {binary_id}, or not one you have access to")


async def read_binary(
    session: AsyncSession, caller: Caller, binary_id: str, settings: Settings
) -> BinaryContent:
    """The bytes behind the DocumentReference of the same id, to those who may read it
    (clients also need ``system/Binary.r``); the read is audited with the patient."""
    try:
        key = uuid.UUID(binary_id)
    except ValueError as exc:
        raise _missing(binary_id) from exc
    if caller.principal.kind == "client":
        require_scope(caller.principal, "Binary", "r")
    else:
        check_person_may_use(caller)
    document = await store.read_current(session, "DocumentReference", binary_id)
    if document is None or document.deleted:
        raise _missing(binary_id)
    try:
        await check_consult_resource(session, caller, document)  # notes the read, or 404
    finally:
        caller.notes[-1].entity_type = "Binary"  # audited as what was asked for
    attachment = await session.get(ConsultAttachment, key)
    if attachment is not None:
        path = stored_file(settings, attachment)
        content = await asyncio.to_thread(path.read_bytes)
        return BinaryContent(
            binary_id, attachment.media_type, attachment.filename, len(content), data=content
        )
    recording = await session.get(Recording, key)
    if recording is None:  # the consult note: its text is in the DocumentReference itself
        raise _missing(binary_id)
    root = settings.data_dir.resolve()
    path = (root / recording.path).resolve()
    if recording.stopped_at is None or not path.is_relative_to(root):
        raise _missing(binary_id)  # still recording, or not a file of ours
    size = await asyncio.to_thread(lambda: path.stat().st_size if path.is_file() else -1)
    if size < 0:
        raise NotFound(f"The file of Binary/{binary_id} is no longer kept")
    return BinaryContent(binary_id, RECORDING_TYPE, path.name, size, path=path)
