"""``/fhir/Appointment/$find`` and ``/fhir/Appointment/$book``: parse, call one use case, answer."""

from __future__ import annotations

from litestar import Controller, Response, get, post

from telehealth.api.dependencies import CallerDep, SessionDep, SettingsDep
from telehealth.errors import NotFound
from telehealth.fhir import bundle, scheduling_ops
from telehealth.fhir.consult_input import read_binary
from telehealth.fhir.controllers import (
    _JSON_TYPES,
    AnyRequest,
    _answer,
    _body,
    _query,
    _written,
    fhir_base,
)
from telehealth.fhir.operations import OPERATION_DEFINITIONS
from telehealth.fhir.store import to_json


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
        version = await scheduling_ops.book_appointment(session, caller, appointment)
        return _written(version, True, fhir_base(request, settings))


class FhirOperationDefinitionController(Controller):
    path = "/fhir/OperationDefinition"
    include_in_schema = False

    @get("/{definition_id:str}")
    async def read(self, definition_id: str) -> Response[bytes]:
        definition = OPERATION_DEFINITIONS.get(definition_id)
        if definition is None:
            raise NotFound(f"No OperationDefinition {definition_id}")
        return _answer(to_json(definition))


class FhirBinaryController(Controller):
    path = "/fhir/Binary"
    include_in_schema = False

    @get("/{binary_id:str}")
    async def read(
        self, binary_id: str, session: SessionDep, caller: CallerDep, settings: SettingsDep
    ) -> Response[bytes]:
        """An attachment as a Binary (base64), to those who may read its request."""
        return _answer(to_json(await read_binary(session, caller, binary_id, settings)))


def _proposals(resources: list[dict[str, object]]) -> str:
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return bundle.response_bundle("searchset", entries)
