"""The browser session: our access and refresh tokens in httpOnly cookies.

The access token is the same signed token the API takes as a bearer token, so a page and an
API call are authorised by one rule. The refresh token is sent only to ``/session`` paths.
Cookies are ``SameSite=Lax`` and ``Secure`` whenever the public base URL is https.
"""

from __future__ import annotations

import hashlib

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie

from telehealth.settings import Settings

ACCESS_COOKIE = "th_access"
REFRESH_COOKIE = "th_refresh"
LANGUAGE_COOKIE = "th_lang"
CSRF_COOKIE = "th_csrf"
SESSION_PATH = "/session"


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


def cleared_session_cookies(settings: Settings) -> list[Cookie]:
    secure = is_secure(settings)
    return [
        Cookie(key=ACCESS_COOKIE, value="", path="/", max_age=0, httponly=True, secure=secure),
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
