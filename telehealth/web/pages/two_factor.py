"""The person's two-factor sign-in: enrol an authenticator app (a QR code, the same secret in
letters for typing, a first code to confirm), see the recovery codes once, make new ones,
turn it off where the role allows (``telehealth.auth.two_factor``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth import two_factor
from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.principal import Caller
from telehealth.db import Database
from telehealth.errors import TelehealthError
from telehealth.http.cookies import cleared_session_cookies
from telehealth.http.dependencies import CallerDep, DatabaseDep, SettingsDep
from telehealth.http.paths import TWO_FACTOR_PAGE
from telehealth.settings import Settings
from telehealth.web.forms import FormState, posted, refused
from telehealth.web.render import page, page_language

T = TypeVar("T")


async def _account_page(
    request: Request[Any, Any, Any],
    db: Database,
    caller: Caller,
    settings: Settings,
    form: FormState,
    status_code: int = 200,
) -> Template:
    """Enrolment while none is on; otherwise the state and what can be done with it."""
    async with audited_unit_of_work(db, caller) as session:
        account = await two_factor.own_account(session, caller)
        state = await two_factor.state_of(session, settings, account)
        enrolment = (
            None if state.enrolled else await two_factor.start_enrolment(session, settings, caller)
        )
    return page(
        request,
        "two_factor.html",
        status_code=status_code,
        form=form,
        state=state,
        enrolment=enrolment,
    )


async def _done_or_refused(
    request: Request[Any, Any, Any],
    db: Database,
    caller: Caller,
    work: Callable[[AsyncSession], Awaitable[T]],
) -> T | Template:
    """The change, or the page again with the refusal on its field (422)."""
    try:
        async with audited_unit_of_work(db, caller) as session:
            return await work(session)
    except TelehealthError as exc:
        state = refused(FormState(), exc, page_language(request))
        settings = request.app.state.settings
        return await _account_page(request, db, caller, settings, state, status_code=422)


class TwoFactorPages(Controller):
    path = TWO_FACTOR_PAGE
    include_in_schema = False

    @get("/")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template:
        return await _account_page(request, db, caller, settings, FormState())

    @post("/")
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template:
        """The first code: on from now; the recovery codes shown this once; log in again."""
        code = (await posted(request)).get("code", "")[:40]
        codes = await _done_or_refused(
            request,
            db,
            caller,
            lambda session: two_factor.confirm_enrolment(session, settings, caller, code),
        )
        if isinstance(codes, Template):
            return codes
        return page(
            request,
            "recovery_codes.html",
            cookies=cleared_session_cookies(settings),
            codes=codes,
            log_in_again=True,
        )

    @post("/recovery-codes")
    async def renew_codes(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template:
        code = (await posted(request)).get("code", "")[:40]
        codes = await _done_or_refused(
            request,
            db,
            caller,
            lambda session: two_factor.renew_recovery_codes(session, settings, caller, code),
        )
        if isinstance(codes, Template):
            return codes
        return page(request, "recovery_codes.html", codes=codes, log_in_again=False)

    @post("/off")
    async def turn_off(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        password = (await posted(request)).get("password", "")[:200]
        refusal = await _done_or_refused(
            request,
            db,
            caller,
            lambda session: two_factor.turn_off(session, settings, caller, password),
        )
        if isinstance(refusal, Template):
            return refusal
        return Redirect(
            "/login?notice=two_factor_off",
            status_code=303,
            cookies=cleared_session_cookies(settings),
        )
