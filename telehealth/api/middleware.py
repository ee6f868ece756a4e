"""Request id, one structured log line per request, and bearer-token authentication."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from telehealth.auth.principal import Principal
from telehealth.auth.tokens import read_access_token
from telehealth.errors import NotAuthenticated, PasswordChangeRequired
from telehealth.web.cookies import (
    ACCESS_COOKIE,
    ACTIVE_ACCOUNT_STATE,
    ACTIVITY_COOKIE,
    idle_for,
)
from telehealth.web.paths import CHANGE_PASSWORD_PAGE, PUBLIC_PAGE_PATHS

access_log = logging.getLogger("telehealth.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")

# Reachable without a token: login and token endpoints, health, discovery and API docs.
PUBLIC_PATHS = [
    "^/health$",
    "^/api/auth/(login|refresh|token)$",
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
# All a session whose password someone else chose may reach: change it, see who it is, leave.
CHANGE_PASSWORD_PATHS = frozenset(
    {CHANGE_PASSWORD_ENDPOINT, CHANGE_PASSWORD_PAGE, "/api/auth/me", "/api/auth/logout"}
)


def refuse_until_password_changed(principal: Principal, path: str) -> None:
    """A password chosen by someone else (a new account, an administrator's reset) is known to
    them: until the owner chooses one, the session serves only to change it."""
    if principal.must_change_password and path not in CHANGE_PASSWORD_PATHS:
        raise PasswordChangeRequired(
            "Your password was set by someone else: choose your own first with "
            f"POST {CHANGE_PASSWORD_ENDPOINT} (current_password, new_password), "
            "then log in again"
        )


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
            access_log.info(
                json.dumps(
                    {
                        "event": "request",
                        "request_id": request_id(scope),
                        "method": scope.get("method", "WS"),
                        "path": scope["path"],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
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
        refuse_until_password_changed(principal, connection.scope["path"])
        return AuthenticationResult(user=principal, auth=token)

    @staticmethod
    def _note_page_activity(
        connection: ASGIConnection[Any, Any, Any, Any], principal: Principal
    ) -> None:
        """A page session idle too long has ended (``telehealth.web.cookies``); otherwise this
        request is its latest activity (a WebSocket cannot set cookies, and is not one)."""
        settings = connection.app.state.settings
        if idle_for(settings, connection.cookies.get(ACTIVITY_COOKIE), principal.id):
            raise NotAuthenticated("The session ended after a time without activity; log in")
        if connection.scope["type"] == ScopeType.HTTP:
            connection.scope.setdefault("state", {})[ACTIVE_ACCOUNT_STATE] = principal.id
