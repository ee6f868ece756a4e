"""Request id, one structured log line per request, bearer-token authentication, and the
request class that checks a JSON body's depth before litestar parses it."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from telehealth.auth.principal import Principal
from telehealth.auth.tokens import read_access_token
from telehealth.errors import (
    NotAuthenticated,
    PasswordChangeRequired,
    TwoFactorEnrolmentRequired,
)
from telehealth.http.cookies import (
    ACCESS_COOKIE,
    ACTIVE_ACCOUNT_STATE,
    ACTIVITY_COOKIE,
    idle_for,
)
from telehealth.http.paths import CHANGE_PASSWORD_PAGE, PUBLIC_PAGE_PATHS, TWO_FACTOR_PAGE
from telehealth.jsondepth import check_depth
from telehealth.metrics import observe_request

access_log = logging.getLogger("telehealth.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")

# Reachable without a token: login and token endpoints, health, discovery and API docs.
PUBLIC_PATHS = [
    "^/health$",
    "^/metrics$",  # its own token or an administrator's (telehealth.api.health)
    "^/api/auth/(login|login/second-factor|refresh|token)$",
    "^/schema",
    "^/fhir/metadata$",
    "^/fhir/\\.well-known/smart-configuration$",
    "^/static/",
    "^/favicon.ico$",
    *PUBLIC_PAGE_PATHS,
    "^/ws/rooms/",  # the join token authenticates (telehealth.rtc)
    "^/room/",
]

CHANGE_PASSWORD_ENDPOINT = "/api/auth/password"  # noqa: S105  (a path, not a secret)
TWO_FACTOR_ENDPOINT = "/api/auth/two-factor"
# All a restricted session may reach besides its one task: see who it is, leave.
_ALWAYS = frozenset({"/api/auth/me", "/api/auth/logout", "/session/logout"})
# Someone else chose the password: change it.
CHANGE_PASSWORD_PATHS = _ALWAYS | {CHANGE_PASSWORD_ENDPOINT, CHANGE_PASSWORD_PAGE}
# The role needs a second factor and none is enrolled: enrol one.
ENROL_TWO_FACTOR_PATHS = _ALWAYS | {
    TWO_FACTOR_ENDPOINT,
    f"{TWO_FACTOR_ENDPOINT}/confirm",
    TWO_FACTOR_PAGE,
}


def refuse_restricted_session(principal: Principal, path: str) -> None:
    """A password chosen by someone else (a new account, an administrator's reset) is known to
    them: until the owner chooses one, the session serves only to change it. Then, for a role
    that must sign in with a second factor, the session serves only to enrol one."""
    if principal.must_change_password:
        if path in CHANGE_PASSWORD_PATHS:
            return  # the password first; enrolment at the next login
        raise PasswordChangeRequired(
            "Your password was set by someone else: choose your own first with "
            f"POST {CHANGE_PASSWORD_ENDPOINT} (current_password, new_password), "
            "then log in again"
        )
    if principal.must_enrol_two_factor and path not in ENROL_TWO_FACTOR_PATHS:
        raise TwoFactorEnrolmentRequired(
            "Your role must sign in with a second factor: enrol an authenticator app first "
            f"with POST {TWO_FACTOR_ENDPOINT}, then POST {TWO_FACTOR_ENDPOINT}/confirm with a "
            "code from it, then log in again"
        )


class QueryStringsOut(logging.Filter):
    """Cuts the query string off the paths uvicorn logs (it logs each WebSocket accept with
    its full URL): a query string may hold a token (``/ws/updates?access_token=``, an older
    room client's ``?token=``), and the request log leaves them out for the same reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_path_only(arg) for arg in record.args)
        return True


def _path_only(value: object) -> object:
    if isinstance(value, str) and value.startswith("/") and "?" in value:
        return value.split("?", 1)[0]
    return value


def request_id(scope: Scope) -> str:
    """The request's id: the caller's ``X-Request-ID`` if it is a sane token, else a new one;
    decided once and kept in the scope's state."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        incoming = next(
            (value for name, value in scope.get("headers", ()) if name == b"x-request-id"), b""
        ).decode("latin-1")
        state["request_id"] = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
    return str(state["request_id"])


async def add_request_id(message: Message, scope: Scope) -> None:
    """Litestar's ``before_send`` hook, so that every answer carries ``X-Request-ID``: also
    those the application's exception handler sends (a refused token, an unknown path), which
    no middleware of a route sees."""
    if message["type"] == "http.response.start":
        message["headers"] = [
            *message.get("headers", ()),
            (b"x-request-id", request_id(scope).encode()),
        ]
        scope["state"]["response_status"] = message["status"]


async def count_request(message: Message, scope: Scope) -> None:
    """Litestar's ``before_send`` hook for the metrics, so that a request is counted before its
    answer leaves: a client that got the answer finds it counted. Its latency is the time to
    the answer's start, from ``RequestLogMiddleware``'s clock; a request no route matched (an
    unknown path) passes no route's middleware and is counted without one."""
    if message["type"] != "http.response.start":
        return
    started = scope["state"].get("started")
    observe_request(
        str(scope.get("method", "GET")),
        scope.get("path_template"),
        message["status"],
        None if started is None else time.perf_counter() - started,
    )


# Pages run only the service's own scripts and styles, connect only to the service (its
# WebSockets included), and may not be framed. See docs/security.md.
_CONTENT_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# The interactive API description (/schema/swagger) is litestar's page: its bootstrap script is
# inline and Swagger UI comes from a CDN. It shows no patient data and reflects no input.
_API_DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "img-src 'self' data: https://cdn.jsdelivr.net",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    # The consult room uses the camera and microphone; nothing else, and no framed page, may.
    (
        b"permissions-policy",
        b"camera=(self), microphone=(self), display-capture=(self), "
        b"geolocation=(), payment=(), usb=(), serial=(), bluetooth=()",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# Encoded once: these go on every answer.
_PAGE_HEADERS = (*_SECURITY_HEADERS, (b"content-security-policy", _CONTENT_POLICY.encode()))
_API_DOCS_HEADERS = (*_SECURITY_HEADERS, (b"content-security-policy", _API_DOCS_POLICY.encode()))


def _is_api_docs_page(path: str) -> bool:
    return path.startswith("/schema") and not path.endswith((".json", ".yaml", ".yml"))


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Litestar's ``before_send`` hook: the security headers on every answer, errors too.
    HSTS only over TLS (``https`` here, or from a trusted proxy's ``X-Forwarded-Proto``)."""
    if message["type"] != "http.response.start":
        return
    page = _API_DOCS_HEADERS if _is_api_docs_page(scope["path"]) else _PAGE_HEADERS
    added = (*page, _HSTS) if scope.get("scheme") == "https" else page
    headers = list(message.get("headers", ()))
    # A route's own value stands (a download's stricter sandbox policy): no header twice.
    own = {bytes(name).lower() for name, _ in headers}
    message["headers"] = headers + [(name, value) for name, value in added if name not in own]


class RequestLogMiddleware:
    """Logs each request once, with its id, without query strings or bodies, so that no
    patient data reaches the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id(scope)  # decided before anything (the audit rows) reads it
        scope["state"]["started"] = started
        failure: BaseException | None = None
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            failure = exc  # answered by the application's exception handler, after this
            raise
        finally:
            user = scope.get("user")
            status = scope.get("state", {}).get("response_status") or (
                getattr(failure, "status_code", 500) if failure is not None else 0
            )
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", "WS"))
            access_log.info(
                json.dumps(
                    {
                        "event": "request",
                        "request_id": request_id(scope),
                        "method": method,
                        "path": scope["path"],
                        "status": status,
                        "ms": round(elapsed * 1000, 1),
                        "actor": str(user.id) if isinstance(user, Principal) else None,
                    }
                )
            )


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Every request carries ``Authorization: Bearer <token>`` (WebSockets may pass
    ``?access_token=`` since browsers cannot set headers on them); pages may carry it in
    the session cookie instead."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not token and connection.scope["type"] == ScopeType.WEBSOCKET:
            token = connection.query_params.get("access_token", "")
            scheme = "Bearer"
        page_session = False
        if not token and not connection.scope["path"].startswith(("/api/", "/fhir")):
            # Pages (and their WebSocket) carry the token in the session cookie; /api and /fhir
            # never do, so a cross-site form cannot act there with a browser's cookie.
            token = connection.cookies.get(ACCESS_COOKIE, "")
            scheme = "Bearer"
            page_session = bool(token)
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("Log in first: send 'Authorization: Bearer <access token>'")
        state = connection.app.state
        principal = read_access_token(
            token.strip(), state.settings.signing_key, state.get("session_resets")
        )
        if page_session:
            self._note_page_activity(connection, principal)
        refuse_restricted_session(principal, connection.scope["path"])
        return AuthenticationResult(user=principal, auth=token)

    @staticmethod
    def _note_page_activity(
        connection: ASGIConnection[Any, Any, Any, Any], principal: Principal
    ) -> None:
        """A page session idle too long has ended (``telehealth.http.cookies``); otherwise this
        request is its latest activity (a WebSocket cannot set cookies, and is not one)."""
        settings = connection.app.state.settings
        if idle_for(settings, connection.cookies.get(ACTIVITY_COOKIE), principal.id):
            raise NotAuthenticated("The session ended after a time without activity; log in")
        if connection.scope["type"] == ScopeType.HTTP:
            connection.scope.setdefault("state", {})[ACTIVE_ACCOUNT_STATE] = principal.id


class DepthCheckedRequest(Request[Any, Any, Any]):
    """Litestar parses every JSON body a handler takes (``data``) through ``json()``; whatever
    the content type said, a body nested too deep is refused there with a 400."""

    async def json(self) -> Any:
        check_depth(await self.body())
        return await super().json()
