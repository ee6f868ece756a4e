"""The person's two-factor sign-in: enrol an authenticator app (a QR code, the same secret in
letters for typing, a first code to confirm), see the recovery codes once, make new ones,
turn it off where the role allows (``telehealth.auth.two_factor``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

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
        values = await posted(request)
        state = FormState()
        try:
            async with audited_unit_of_work(db, caller) as session:
                codes = await two_factor.confirm_enrolment(
                    session, settings, caller, values.get("code", "")[:40]
                )
        except TelehealthError as exc:
            refused(state, exc, page_language(request))
            return await _account_page(request, db, caller, settings, state, status_code=422)
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
        values = await posted(request)
        state = FormState()
        try:
            async with audited_unit_of_work(db, caller) as session:
                codes = await two_factor.renew_recovery_codes(
                    session, settings, caller, values.get("code", "")[:40]
                )
        except TelehealthError as exc:
            refused(state, exc, page_language(request))
            return await _account_page(request, db, caller, settings, state, status_code=422)
        return page(request, "recovery_codes.html", codes=codes, log_in_again=False)

    @post("/off")
    async def turn_off(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        values = await posted(request)
        state = FormState()
        try:
            async with audited_unit_of_work(db, caller) as session:
                await two_factor.turn_off(
                    session, settings, caller, values.get("password", "")[:200]
                )
        except TelehealthError as exc:
            refused(state, exc, page_language(request))
            return await _account_page(request, db, caller, settings, state, status_code=422)
        return Redirect(
            "/login?notice=two_factor_off",
            status_code=303,
            cookies=cleared_session_cookies(settings),
        )
