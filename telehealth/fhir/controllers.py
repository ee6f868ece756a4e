"""The REST face at /fhir: parse the HTTP request, call one use case, answer with stored JSON.

Every error is rendered as an OperationOutcome by the application's exception handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.status_codes import HTTP_304_NOT_MODIFIED, HTTP_415_UNSUPPORTED_MEDIA_TYPE
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import audited_read
from telehealth.auth.principal import Caller
from telehealth.errors import BadRequest
from telehealth.fhir import bundle, service
from telehealth.fhir.audit_events import read_audit_event, search_audit_events
from telehealth.fhir.capability import capability_statement, smart_configuration
from telehealth.fhir.outcome import FHIR_JSON
from telehealth.fhir.store import StoredVersion, to_json
from telehealth.fhir.transaction import run_bundle
from telehealth.http.dependencies import (
    CallerDep,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    provide_caller,
)
from telehealth.settings import Settings

AnyRequest = Request[Any, Any, Any]
_JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir"}
_PATCH_TYPES = {"application/merge-patch+json", *_JSON_TYPES}


def fhir_base(request: AnyRequest, _settings: Settings | None = None) -> str:
    """Absolute base of this server as the client reached it (links must match its base)."""
    return str(request.base_url).rstrip("/") + "/fhir"


@asynccontextmanager
async def reading(request: AnyRequest) -> AsyncIterator[tuple[AsyncSession, Caller]]:
    """The session and caller of a read or search, without the dependency injection of a unit
    of work: no BEGIN/COMMIT round trips, the audit notes in one INSERT (``audited_read``)."""
    caller = provide_caller(request)
    async with audited_read(request.app.state.db, caller) as session:
        yield session, caller


def _answer(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(text.encode(), status_code=status, media_type=FHIR_JSON, headers=headers)


def _version_headers(version: StoredVersion, base: str) -> dict[str, str]:
    return {
        "ETag": version.etag,
        "Last-Modified": format_datetime(version.last_updated, usegmt=True),
        "Content-Location": f"{base}/{version.resource_type}/{version.resource_id}"
        f"/_history/{version.version_id}",
    }


def _if_match(request: AnyRequest) -> int | None:
    value = request.headers.get("if-match")
    if not value:
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise BadRequest(f'If-Match must be a version tag such as W/"3", not {value}')
    return int(digits)


async def _body(request: AnyRequest, allowed: set[str]) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in allowed:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Send the body as application/fhir+json, not {content_type or 'nothing'}",
        )
    return service.decode_json(await request.body())


def _query(request: AnyRequest) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query, keep_blank_values=True)


def _written(version: StoredVersion, created: bool, base: str) -> Response[bytes]:
    headers = _version_headers(version, base)
    if created:
        headers["Location"] = headers["Content-Location"]
    return _answer(version.text, 201 if created else 200, headers)


class FhirDiscoveryController(Controller):
    path = "/fhir"
    tags = ["fhir"]
    include_in_schema = False

    @get("/metadata")
    async def metadata(self, request: AnyRequest, settings: SettingsDep) -> Response[bytes]:
        return _answer(to_json(capability_statement(fhir_base(request, settings))))

    @get("/.well-known/smart-configuration", media_type="application/json")
    async def smart(self, request: AnyRequest, settings: SettingsDep) -> dict[str, Any]:
        return smart_configuration(fhir_base(request, settings))


class FhirController(Controller):
    path = "/fhir"
    tags = ["fhir"]
    include_in_schema = False

    @post("/")
    async def bundle(
        self, request: AnyRequest, db: DatabaseDep, caller: CallerDep, settings: SettingsDep
    ) -> Response[bytes]:
        body = await _body(request, _JSON_TYPES)
        return _answer(await run_bundle(db, caller, body, fhir_base(request, settings)))

    @get("/{resource_type:str}")
    async def search(self, request: AnyRequest, resource_type: FromPath[str]) -> Response[bytes]:
        base = fhir_base(request)
        params = _query(request)
        async with reading(request) as (session, caller):
            if resource_type == "AuditEvent":
                found, count, offset = await search_audit_events(session, caller, params)
            else:
                query, result = await service.search(session, caller, resource_type, params)
        if resource_type == "AuditEvent":
            entries = [
                f'{{"fullUrl":"{base}/AuditEvent/{r["id"]}","resource":{to_json(r)}}}'
                for r in found[:count]
            ]
            links = _links(base, resource_type, params, offset, count, len(found) > count)
            frame = to_json(
                {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "link": [{"relation": r, "url": u} for r, u in links],
                }
            )
            return _answer(frame[:-1] + ',"entry":[' + ",".join(entries) + "]}")
        links = _links(base, resource_type, params, query.offset, query.count, result.has_next)
        return _answer(bundle.searchset(base, result.matches, result.included, result.total, links))

    @post("/{resource_type:str}/_search", status_code=200)
    async def search_by_form(
        self, request: AnyRequest, resource_type: FromPath[str]
    ) -> Response[bytes]:
        """Search with the parameters in a form body (keeps them out of URLs and logs)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise HTTPException(
                status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                detail="Send _search parameters as application/x-www-form-urlencoded",
            )
        params = _query(request) + parse_qsl(
            (await request.body()).decode(), keep_blank_values=True
        )
        base = fhir_base(request)
        async with reading(request) as (session, caller):
            query, result = await service.search(session, caller, resource_type, params)
        links = _links(base, resource_type, params, query.offset, query.count, result.has_next)
        return _answer(bundle.searchset(base, result.matches, result.included, result.total, links))

    @post("/{resource_type:str}")
    async def create(
        self,
        request: AnyRequest,
        resource_type: FromPath[str],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        body = await _body(request, _JSON_TYPES)
        criteria = parse_qsl(request.headers.get("if-none-exist", ""), keep_blank_values=True)
        criteria += [(k, v) for k, v in _query(request) if k not in ("_format", "_pretty")]
        outcome = await service.create(session, caller, resource_type, body, settings, criteria)
        answer = _written(outcome.version, outcome.created, fhir_base(request, settings))
        answer.headers.update(outcome.headers)
        return answer

    @put("/{resource_type:str}")
    async def conditional_update(
        self,
        request: AnyRequest,
        resource_type: FromPath[str],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        body = await _body(request, _JSON_TYPES)
        criteria = [(k, v) for k, v in _query(request) if k not in ("_format", "_pretty")]
        outcome = await service.conditional_update(
            session, caller, resource_type, criteria, body, settings
        )
        return _written(outcome.version, outcome.created, fhir_base(request, settings))

    @get("/{resource_type:str}/_history")
    async def type_history(
        self, request: AnyRequest, resource_type: FromPath[str]
    ) -> Response[bytes]:
        return await _history(request, resource_type, None)

    @get("/{resource_type:str}/{resource_id:str}")
    async def read(
        self, request: AnyRequest, resource_type: FromPath[str], resource_id: FromPath[str]
    ) -> Response[bytes]:
        kept = request.app.state.fhir_cache
        if kept is not None:
            hit = service.cached_read(kept, provide_caller(request), resource_type, resource_id)
            if hit is not None:
                return _conditional_read(request, hit, fhir_base(request))
        async with reading(request) as (session, caller):
            if resource_type == "AuditEvent":
                return _answer(to_json(await read_audit_event(session, caller, resource_id)))
            version = await service.read(session, caller, resource_type, resource_id, kept=kept)
        return _conditional_read(request, version, fhir_base(request))

    @put("/{resource_type:str}/{resource_id:str}")
    async def update(
        self,
        request: AnyRequest,
        resource_type: FromPath[str],
        resource_id: FromPath[str],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        body = await _body(request, _JSON_TYPES)
        outcome = await service.update(
            session, caller, resource_type, resource_id, body, _if_match(request)
        )
        return _written(outcome.version, False, fhir_base(request, settings))

    @patch("/{resource_type:str}/{resource_id:str}")
    async def patch(
        self,
        request: AnyRequest,
        resource_type: FromPath[str],
        resource_id: FromPath[str],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        body = await _body(request, _PATCH_TYPES)
        outcome = await service.patch(
            session, caller, resource_type, resource_id, body, _if_match(request)
        )
        return _written(outcome.version, False, fhir_base(request, settings))

    @get("/{resource_type:str}/{resource_id:str}/_history")
    async def instance_history(
        self, request: AnyRequest, resource_type: FromPath[str], resource_id: FromPath[str]
    ) -> Response[bytes]:
        return await _history(request, resource_type, resource_id)

    @get("/{resource_type:str}/{resource_id:str}/_history/{version_id:str}")
    async def vread(
        self,
        request: AnyRequest,
        resource_type: FromPath[str],
        resource_id: FromPath[str],
        version_id: FromPath[str],
    ) -> Response[bytes]:
        if not version_id.isdigit():
            raise BadRequest(f"Version ids are numbers, not '{version_id}'")
        async with reading(request) as (session, caller):
            version = await service.read(
                session, caller, resource_type, resource_id, int(version_id)
            )
        return _conditional_read(request, version, fhir_base(request))


def _conditional_read(request: AnyRequest, version: StoredVersion, base: str) -> Response[bytes]:
    headers = _version_headers(version, base)
    if request.headers.get("if-none-match", "").strip() in (
        version.etag,
        f'"{version.version_id}"',
    ):
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return _answer(version.text, 200, headers)


def _links(
    base: str,
    resource_type: str,
    params: list[tuple[str, str]],
    offset: int,
    count: int,
    has_next: bool,
) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in params if k not in ("_offset", "_getpagesoffset")]
    links = [("self", f"{base}/{resource_type}?{urlencode([*kept, ('_offset', str(offset))])}")]
    if has_next:
        links.append(
            (
                "next",
                f"{base}/{resource_type}?{urlencode([*kept, ('_offset', str(offset + count))])}",
            )
        )
    if offset > 0:
        previous = str(max(0, offset - count))
        links.append(
            ("previous", f"{base}/{resource_type}?{urlencode([*kept, ('_offset', previous)])}")
        )
    return links


async def _history(
    request: AnyRequest, resource_type: str, resource_id: str | None
) -> Response[bytes]:
    base = fhir_base(request)
    params = _query(request)
    async with reading(request) as (session, caller):
        versions, count, offset = await service.history(
            session, caller, resource_type, resource_id, params
        )
    path = resource_type if resource_id is None else f"{resource_type}/{resource_id}"
    links = _links(base, f"{path}/_history", params, offset, count, len(versions) > count)
    return _answer(bundle.history(base, versions[:count], links))
