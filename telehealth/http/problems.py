"""One exception handler: problem+json (RFC 9457) under /api, OperationOutcome under /fhir, a
page for a browser.

Whatever goes wrong, the client gets a status, a title and a ``detail`` a person can act on;
unexpected exceptions are logged with their traceback and answered with a bare 500. The FHIR
body and the error page belong to their edges: ``create_app`` hands them to ``ErrorAnswers``,
so this module imports no edge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, InternalServerException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from msgspec import ValidationError as MsgspecError
from pydantic import BaseModel

from telehealth.errors import AccountLocked, FieldProblem, TelehealthError, Unavailable

log = logging.getLogger("telehealth.errors")

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every /api error is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None


_DOCUMENTED = {
    400: "The request is malformed: bad JSON, a missing or mistyped field (named in errors)",
    401: "No valid access token (or wrong credentials)",
    403: "Authenticated, but not allowed to do this",
    404: "No such thing, or not one you may know of",
    409: "Conflicts with the current state (e.g. an identifier already taken)",
    422: "Well-formed, but a value is wrong (named in errors)",
}


def document_problems(app: Litestar) -> None:
    """Describe the problem+json error answers in the OpenAPI of every /api operation
    (litestar's default documents a different body, as application/json)."""
    spec = {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=description,
            generate_examples=False,
        )
        for status, description in _DOCUMENTED.items()
    }
    for route in app.routes:
        if not route.path.startswith("/api"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler):
                handler.responses = {**spec, **(handler.responses or {})}


def _validation_problems(exc: ValidationException) -> tuple[FieldProblem, ...]:
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field = str(item.get("key") or item.get("source") or "body")
            problems.append(FieldProblem(field, str(item.get("message", "is invalid"))))
    return tuple(problems)


def _misread_client_problems(exc: Exception) -> tuple[FieldProblem, ...]:
    """Litestar takes a body error whose key equals a dependency's name (an extra field
    called ``session`` or ``settings``) for a failed dependency and answers 500. Our
    dependencies are never validated, so a validation error behind a 500 is the client's."""
    cause = exc.__cause__
    if not isinstance(exc, InternalServerException) or not isinstance(cause, MsgspecError):
        return ()
    errors = getattr(cause, "errors", None)
    return tuple(
        FieldProblem(".".join(str(part) for part in error.get("loc", ())) or "body", error["msg"])
        for error in (errors if isinstance(errors, list) else [])
        if isinstance(error, dict) and "msg" in error
    )


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser asking for a path no page or API route has: answer with a page."""
    path = request.url.path
    return not path.startswith(("/api", "/fhir", "/schema", "/health", "/static", "/ws")) and (
        "text/html" in request.headers.get("accept", "")
    )


PageError = Callable[[Request[Any, Any, Any], Exception], Response[Any]]
OutcomeBody = Callable[[int, str, tuple[FieldProblem, ...]], Any]


class ErrorAnswers:
    """The app's exception handlers, given the two bodies that belong to other edges: the web
    pages' error page and the FHIR OperationOutcome."""

    def __init__(
        self, *, page_error: PageError, fhir_outcome: OutcomeBody, fhir_media_type: str
    ) -> None:
        self.page_error = page_error
        self.fhir_outcome = fhir_outcome
        self.fhir_media_type = fhir_media_type

    def handle_exception_group(
        self, request: Request[Any, Any, Any], group: ExceptionGroup[Exception]
    ) -> Response[Any]:
        """Litestar wraps an error raised while a yield dependency (the unit of work) handles
        another one in an ExceptionGroup: a constraint violation at flush time comes back as
        the ``Conflict`` the unit of work made of it, wrapped so. Report the error meant."""
        exc: Exception = group
        while isinstance(exc, ExceptionGroup):
            ours = [e for e in exc.exceptions if isinstance(e, TelehealthError)]
            exc = ours[0] if ours else exc.exceptions[0]
        return self.handle_exception(request, exc)

    def _render(
        self,
        request: Request[Any, Any, Any],
        status: int,
        title: str,
        detail: str,
        problems: tuple[FieldProblem, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> Response[Any]:
        if request.url.path.startswith("/fhir"):
            return Response(
                self.fhir_outcome(status, detail, problems),
                status_code=status,
                media_type=self.fhir_media_type,
                headers=headers,
            )
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": request.url.path,
        }
        if problems:
            body["errors"] = [{"field": p.field, "message": p.message} for p in problems]
        return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)

    def handle_exception(self, request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        if _wants_page(request):
            return self.page_error(request, exc)
        if isinstance(exc, TelehealthError) and (
            exc.status_code < 500 or isinstance(exc, Unavailable)
        ):
            headers = (
                {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, AccountLocked) else None
            )
            if isinstance(exc, Unavailable):
                headers = {"Retry-After": "1"}
            if exc.status_code == 401:
                headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="telehealth"'}
            return self._render(
                request, exc.status_code, exc.title, exc.detail, exc.problems, headers
            )
        if isinstance(exc, UnicodeDecodeError):  # litestar lets this through from the JSON decoder
            return self._render(request, 400, "Bad request", "The request body is not valid UTF-8")
        if isinstance(exc, RuntimeError) and isinstance(exc.__cause__, StopIteration):
            # litestar's multipart extractor looks for an UploadFile with next(): a form without
            # any file part surfaces as "coroutine raised StopIteration".
            return self._render(
                request, 400, "Bad request", "The multipart body holds no file part"
            )
        if problems := _misread_client_problems(exc):
            detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
            return self._render(request, 400, "Invalid request", detail, problems)
        if isinstance(exc, ValidationException):
            problems = _validation_problems(exc)
            detail = "; ".join(f"{p.field}: {p.message}" for p in problems) or str(exc.detail)
            return self._render(request, 400, "Invalid request", detail, problems)
        if isinstance(exc, HTTPException) and exc.status_code < 500:
            title = _TITLES.get(exc.status_code, "Request refused")
            detail = exc.detail if exc.detail and exc.detail != title else title
            return self._render(request, exc.status_code, title, detail, headers=exc.headers)
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return self._render(
            request,
            HTTP_500_INTERNAL_SERVER_ERROR,
            "Internal error",
            "Something went wrong on our side; it has been logged. Please try again.",
        )
