"""The browser session: our access and refresh tokens in httpOnly cookies.

The access token is the same signed token the API takes as a bearer token, so a page and an
API call are authorised by one rule. The refresh token is sent only to ``/session`` paths.
Cookies are ``SameSite=Lax`` and ``Secure`` whenever the public base URL is https.

A session ends after ``web_idle_timeout_s`` without a page request (issue #13, level 3). The
moment of the last one is a third cookie, ``th_seen``: the account id and the time, signed
with a key derived from the signing key, so the browser cannot move it forward. Every page
answer of a logged-in session sets it anew (``renew_activity``); a page request whose
``th_seen`` is missing, forged, another account's or too old is refused as not logged in, and
``/session/refresh`` then revokes the refresh token instead of renewing it (the person logs
in again). Stateless, so a page costs no database write. API tokens are not page sessions:
``/api/auth/refresh`` is not bound by it (see docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.types import Message, Scope

from telehealth.settings import Settings

ACCESS_COOKIE = "th_access"
REFRESH_COOKIE = "th_refresh"
LANGUAGE_COOKIE = "th_lang"
CSRF_COOKIE = "th_csrf"
ACTIVITY_COOKIE = "th_seen"
SESSION_PATH = "/session"
# Set by the authentication middleware on a page request authorised by the session cookie.
ACTIVE_ACCOUNT_STATE = "web_session_account"


def is_secure(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")


def session_cookies(
    settings: Settings, access_token: str, refresh_token: str | None
) -> list[Cookie]:
    secure = is_secure(settings)
    cookies = [
        Cookie(
            key=ACCESS_COOKIE,
            value=access_token,
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
            max_age=settings.refresh_token_ttl_s,
        )
    ]
    if refresh_token:
        cookies.append(
            Cookie(
                key=REFRESH_COOKIE,
                value=refresh_token,
                path=SESSION_PATH,
                httponly=True,
                samesite="lax",
                secure=secure,
                max_age=settings.refresh_token_ttl_s,
            )
        )
    return cookies


def _activity_signature(settings: Settings, account_id: uuid.UUID, moment: int) -> str:
    key = hashlib.sha256(f"web-activity:{settings.signing_key}".encode()).digest()
    return hmac.new(key, f"{account_id}.{moment}".encode(), hashlib.sha256).hexdigest()[:32]


def activity_cookie(
    settings: Settings, account_id: uuid.UUID, clock: Callable[[], float] = time.time
) -> Cookie:
    """The signed moment of this page request (``clock``: seconds since the epoch), for the
    idle rule."""
    moment = int(clock() * 1000)  # milliseconds: a whole second is much of a short timeout
    signature = _activity_signature(settings, account_id, moment)
    return Cookie(
        key=ACTIVITY_COOKIE,
        value=f"{account_id}.{moment}.{signature}",
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure(settings),
        max_age=settings.refresh_token_ttl_s,
    )


def idle_for(settings: Settings, value: str | None, account_id: uuid.UUID | None = None) -> bool:
    """Whether the session has had no page request for ``web_idle_timeout_s`` (or no valid
    record of one, of ``account_id`` when given)."""
    account, _, rest = (value or "").partition(".")
    moment, _, signature = rest.partition(".")
    try:
        seen_by, seen_at = uuid.UUID(account), int(moment)
    except ValueError:
        return True
    expected = _activity_signature(settings, seen_by, seen_at)
    if not hmac.compare_digest(expected, signature):
        return True
    if account_id is not None and seen_by != account_id:
        return True
    return time.time() - seen_at / 1000 >= settings.web_idle_timeout_s


async def renew_activity(message: Message, scope: Scope) -> None:
    """Litestar's ``before_send`` hook: a page answered to a logged-in session records the
    moment (unless the answer ends the session, clearing the cookie itself)."""
    if message["type"] != "http.response.start":
        return
    account_id = scope.get("state", {}).get(ACTIVE_ACCOUNT_STATE)
    if account_id is None:
        return
    headers: list[Any] = list(message.get("headers", ()))
    prefix = f"{ACTIVITY_COOKIE}=".encode()
    if any(name == b"set-cookie" and value.startswith(prefix) for name, value in headers):
        return
    settings: Settings = scope["app"].state.settings
    message["headers"] = [*headers, activity_cookie(settings, account_id).to_encoded_header()]


def cleared_session_cookies(settings: Settings) -> list[Cookie]:
    secure = is_secure(settings)
    return [
        Cookie(key=ACCESS_COOKIE, value="", path="/", max_age=0, httponly=True, secure=secure),
        Cookie(key=ACTIVITY_COOKIE, value="", path="/", max_age=0, httponly=True, secure=secure),
        Cookie(
            key=REFRESH_COOKIE, value="", path=SESSION_PATH, max_age=0, httponly=True, secure=secure
        ),
    ]


def language_cookie(settings: Settings, language: str) -> Cookie:
    return Cookie(
        key=LANGUAGE_COOKIE,
        value=language,
        path="/",
        samesite="lax",
        secure=is_secure(settings),
        max_age=365 * 24 * 3600,
    )


def csrf_config(settings: Settings) -> CSRFConfig:
    """Forms carry a token that must match a cookie signed with a key of our own."""
    secret = hashlib.sha256(f"csrf:{settings.signing_key}".encode()).hexdigest()
    return CSRFConfig(
        secret=secret,
        cookie_name=CSRF_COOKIE,
        cookie_secure=is_secure(settings),
        cookie_httponly=True,
        cookie_samesite="lax",
    )
