"""How a page is rendered: its template plus what every page needs (who, language, menu)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Template

from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.http.cookies import LANGUAGE_COOKIE
from telehealth.settings import Settings
from telehealth.web.i18n import Translator, format_day, format_moment, language_of


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str


# The menu of each role. Consult pages (queue, triage board, availability) add their entries
# here when they land; see docs/web.md.
NAV: dict[Role, tuple[NavItem, ...]] = {
    Role.REQUESTER: (
        NavItem("/", "Home"),
        NavItem("/patients", "Patients"),
        NavItem("/patients/new", "Register a patient"),
        NavItem("/consults/new", "Request a consult"),
        NavItem("/queue", "My requests"),
        NavItem("/notifications", "Notifications"),
    ),
    Role.SPECIALIST: (
        NavItem("/queue", "My queue"),
        NavItem("/availability", "Availability"),
        NavItem("/notifications", "Notifications"),
    ),
    Role.COORDINATOR: (
        NavItem("/queue", "Triage board"),
        NavItem("/notifications", "Notifications"),
    ),
    Role.ADMINISTRATOR: (
        NavItem("/", "Home"),
        NavItem("/admin/facilities", "Facilities"),
        NavItem("/admin/practitioners", "Practitioners"),
        NavItem("/admin/accounts", "Accounts"),
        NavItem("/admin/clients", "System clients"),
        NavItem("/admin/audit", "Audit log"),
    ),
}


def page_language(request: Request[Any, Any, Any]) -> str:
    return language_of(request.cookies.get(LANGUAGE_COOKIE))


def current_principal(request: Request[Any, Any, Any]) -> Principal | None:
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


def here(request: Request[Any, Any, Any]) -> str:
    """This page's path and query, to come back to after logging in or switching language."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Template:
    settings: Settings = request.app.state.settings
    language = page_language(request)
    principal = current_principal(request)
    nav = NAV.get(principal.role, ()) if principal and principal.role else ()
    return Template(
        template_name=template,
        status_code=status_code,
        cookies=cookies,
        headers={"Cache-Control": "no-store"},
        context={
            "_": Translator(language),
            "lang": language,
            "user": principal,
            "nav": nav,
            "path": request.url.path,
            "here": quote(here(request), safe="/"),
            "when": lambda moment: format_moment(moment, language, settings.tz),
            "day": lambda value: format_day(value, language),
            **context,
        },
    )
