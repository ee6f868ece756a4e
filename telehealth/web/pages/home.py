"""The home page: what each role does first."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Redirect, Template

from telehealth.auth.models import Role
from telehealth.directory import service as directory
from telehealth.http.dependencies import CallerDep, SessionDep
from telehealth.web.render import page


class HomePage(Controller):
    include_in_schema = False

    @get("/favicon.ico")
    async def favicon(self) -> Redirect:
        """The icon the pages name; asked for here by clients that read no page."""
        return Redirect("/static/favicon.svg", status_code=301)

    @get("/")
    async def home(
        self, request: Request[Any, Any, Any], session: SessionDep, caller: CallerDep
    ) -> Template | Redirect:
        principal = caller.principal
        if principal.role in (Role.SPECIALIST, Role.COORDINATOR):
            return Redirect("/queue", status_code=303)  # their queue is what they do first
        facility = (
            await directory.get_organization(session, caller, principal.organization_id)
            if principal.organization_id
            else None
        )
        recent: list[Any] = []
        total = 0
        if principal.role == Role.REQUESTER:
            rows, total = await directory.search_patients(session, caller, limit=8)
            recent = list(rows)
        return page(request, "home.html", facility=facility, recent=recent, total=total, Role=Role)
