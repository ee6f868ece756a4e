"""``/fhir/Appointment/$find`` and ``/fhir/Appointment/$book``: parse, call one use case, answer."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import File

from telehealth.errors import NotFound
from telehealth.fhir import bundle, scheduling_ops
from telehealth.fhir.binary import read_binary
from telehealth.fhir.controllers import (
    _JSON_TYPES,
    AnyRequest,
    _answer,
    _body,
    _query,
    _written,
    fhir_base,
    reading,
)
from telehealth.fhir.operations import OPERATION_DEFINITIONS
from telehealth.fhir.store import to_json
from telehealth.http.dependencies import CallerDep, SessionDep, SettingsDep
from telehealth.settings import Settings


class FhirSchedulingController(Controller):
    path = "/fhir/Appointment"
    include_in_schema = False

    @get("/$find")
    async def find(
        self, request: AnyRequest, session: SessionDep, caller: CallerDep
    ) -> Response[bytes]:
        proposals = await scheduling_ops.find_appointments(session, caller, _query(request))
        return _answer(_proposals(proposals))

    @post("/$find", status_code=200)
    async def find_by_post(
        self, request: AnyRequest, session: SessionDep, caller: CallerDep
    ) -> Response[bytes]:
        params = scheduling_ops.parameters_from(await _body(request, _JSON_TYPES))
        proposals = await scheduling_ops.find_appointments(session, caller, params)
        return _answer(_proposals(proposals))

    @post("/$book")
    async def book(
        self, request: AnyRequest, session: SessionDep, caller: CallerDep, settings: SettingsDep
    ) -> Response[bytes]:
        appointment = scheduling_ops.appointment_to_book(await _body(request, _JSON_TYPES))
        version = await scheduling_ops.book_appointment(session, caller, appointment, settings)
        return _written(version, True, fhir_base(request, settings))


class FhirOperationDefinitionController(Controller):
    path = "/fhir/OperationDefinition"
    include_in_schema = False

    @get("/{definition_id:str}")
    async def read(self, definition_id: FromPath[str]) -> Response[bytes]:
        definition = OPERATION_DEFINITIONS.get(definition_id)
        if definition is None:
            raise NotFound(f"No OperationDefinition {definition_id}")
        return _answer(to_json(definition))


class FhirBinaryController(Controller):
    path = "/fhir/Binary"
    include_in_schema = False

    @get("/{binary_id:str}")
    async def read(self, request: AnyRequest, binary_id: FromPath[str]) -> Response[Any] | File:
        """The bytes of an attachment or a recording, to those who may read its
        DocumentReference: FHIR JSON (base64) if asked for, else the content itself."""
        settings: Settings = request.app.state.settings
        async with reading(request) as (session, caller):
            found = await read_binary(session, caller, binary_id, settings)
            if _wants_fhir(request):
                resource = await asyncio.to_thread(found.as_resource, settings)
                return _answer(to_json(resource))
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        }
        if found.path is not None:
            return File(
                found.path,
                filename=found.filename,
                media_type=found.content_type,
                content_disposition_type="attachment",
                headers=headers,
            )
        disposition = f"attachment; filename*=UTF-8''{quote(found.filename)}"
        return Response(
            found.data or b"",
            media_type=found.content_type,
            headers={**headers, "Content-Disposition": disposition},
        )


def _wants_fhir(request: AnyRequest) -> bool:
    """R4: a Binary read returns the resource when a FHIR format is asked for, by ``_format``
    or by ``Accept``; otherwise the content in its own type."""
    wanted = str(request.query_params.get("_format") or request.headers.get("accept") or "")
    return "json" in wanted.lower()


def _proposals(resources: list[dict[str, object]]) -> str:
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return bundle.response_bundle("searchset", entries)
