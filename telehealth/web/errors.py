"""Refusals and errors on pages: a page in the person's language, never a traceback.

Not logged in (or the session ran out): back to the login page, through a token refresh when
the browser still holds a refresh cookie, and then back to where the person was.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect

from telehealth.errors import (
    NotAuthenticated,
    PasswordChangeRequired,
    TelehealthError,
    TwoFactorEnrolmentRequired,
)
from telehealth.http.cookies import ACCESS_COOKIE
from telehealth.http.paths import CHANGE_PASSWORD_PAGE, TWO_FACTOR_PAGE
from telehealth.web.render import here, page

log = logging.getLogger("telehealth.errors")

_TITLES = {
    400: "The request could not be understood",
    403: "You are not allowed to do this",
    404: "Not found",
    405: "This action is not available here",
    409: "This cannot be done now",
    413: "The upload is too large",
    422: "Some values are not valid",
    500: "Something went wrong",
}


def _login_redirect(request: Request[Any, Any, Any]) -> Response[Any]:
    target = quote(here(request) if request.method == "GET" else "/", safe="/")
    if ACCESS_COOKIE in request.cookies:
        # A session that ran out: the refresh cookie (sent only to /session) may renew it.
        return Redirect(f"/session/refresh?next={target}", status_code=303)
    return Redirect(f"/login?next={target}", status_code=303)


def handle_page_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, NotAuthenticated | NotAuthorizedException):
        return _login_redirect(request)
    if isinstance(exc, PasswordChangeRequired):
        return Redirect(CHANGE_PASSWORD_PAGE, status_code=303)
    if isinstance(exc, TwoFactorEnrolmentRequired):
        return Redirect(TWO_FACTOR_PAGE, status_code=303)
    if isinstance(exc, TelehealthError) and exc.status_code < 500:
        status, detail = exc.status_code, exc.detail
    elif isinstance(exc, PermissionDeniedException):
        status, detail = 403, "The form had expired or came from elsewhere; please try again."
    elif isinstance(exc, HTTPException) and exc.status_code < 500:
        status, detail = exc.status_code, ""
    else:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        status, detail = 500, "Something went wrong on our side; it has been logged."
    return page(
        request,
        "error.html",
        status_code=status,
        status=status,
        title=_TITLES.get(status, "The request was refused"),
        detail=detail,
    )
