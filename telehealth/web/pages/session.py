"""Logging in (password, then a code where the account has an authenticator) and out,
renewing the session, switching language, changing one's password."""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from telehealth.auth import login as sign_in
from telehealth.auth import service, two_factor
from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.login import LoginOutcome
from telehealth.auth.passwords import minimum_length
from telehealth.auth.principal import Caller
from telehealth.errors import AccountLocked, TelehealthError
from telehealth.http.cookies import (
    ACTIVITY_COOKIE,
    LANGUAGE_COOKIE,
    REFRESH_COOKIE,
    activity_cookie,
    cleared_session_cookies,
    idle_for,
    language_cookie,
    session_cookies,
)
from telehealth.http.dependencies import CallerDep, DatabaseDep, SettingsDep
from telehealth.web.forms import FormState, posted, refused
from telehealth.web.i18n import LANGUAGES, translate
from telehealth.web.render import page, page_language


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _password_page(
    request: Request[Any, Any, Any],
    db: DatabaseDep,
    caller: Caller,
    form: FormState,
    status_code: int = 200,
) -> Template:
    settings = request.app.state.settings
    principal = caller.principal
    async with db.unit_of_work() as session:
        with_code = await two_factor.signs_in_with_it(
            session, settings, principal.id, principal.role
        )
    least = minimum_length(settings, two_factor=with_code)
    return page(request, "password.html", status_code=status_code, form=form, min_length=least)


def _refusal_text(language: str, exc: TelehealthError | None, otherwise: str) -> str:
    """What the page says of a refused login: the wait while shut out, else ``otherwise``."""
    if isinstance(exc, AccountLocked):
        return translate(
            language,
            "Too many failed logins from your address. Try again in {minutes} minute(s) or ask an administrator to unlock it.",
            minutes=math.ceil(exc.retry_after_s / 60),
        )
    return translate(language, otherwise)


def _signed_in(
    request: Request[Any, Any, Any], settings: SettingsDep, outcome: LoginOutcome, target: str
) -> Redirect:
    assert outcome.tokens is not None
    tokens = outcome.tokens
    cookies = session_cookies(settings, tokens.access_token, tokens.refresh_token)
    cookies.append(activity_cookie(settings, tokens.principal.id))
    if LANGUAGE_COOKIE not in request.cookies:
        cookies.append(language_cookie(settings, tokens.principal.language))
    return Redirect(target, status_code=303, cookies=cookies)


class SessionPages(Controller):
    include_in_schema = False

    @get("/login")
    async def login_form(
        self, request: Request[Any, Any, Any], next: FromQuery[str] = "/"
    ) -> Template:
        notice = request.query_params.get("notice")
        if request.query_params.get("changed"):
            notice = "password_changed"
        return page(request, "login.html", form=FormState(), next=safe_next(next), notice=notice)

    @post("/login")
    async def login(
        self, request: Request[Any, Any, Any], db: DatabaseDep, settings: SettingsDep
    ) -> Template | Redirect:
        values = await posted(request)
        language = page_language(request)
        target = safe_next(values.get("next"))
        async with db.unit_of_work() as session:
            outcome = await sign_in.log_in(
                session,
                settings,
                values.get("username", "")[:64],
                values.get("password", "")[:200],
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
        if outcome.challenge is not None:
            return page(
                request,
                "second_factor.html",
                form=FormState(),
                challenge=outcome.challenge,
                next=target,
            )
        if outcome.tokens is None:
            text = _refusal_text(language, outcome.refusal, "Wrong username or password.")
            state = FormState(values={"username": values.get("username", "")}, message=text)
            return page(request, "login.html", status_code=401, form=state, next=target)
        return _signed_in(request, settings, outcome, target)

    @post("/login/second-factor")
    async def second_factor(
        self, request: Request[Any, Any, Any], db: DatabaseDep, settings: SettingsDep
    ) -> Template | Redirect:
        values = await posted(request)
        language = page_language(request)
        target = safe_next(values.get("next"))
        challenge = values.get("challenge", "")[:1000]
        try:
            async with db.unit_of_work() as session:
                outcome = await sign_in.complete_login(
                    session,
                    settings,
                    challenge,
                    values.get("code", "")[:40],
                    ip=request.client.host if request.client else None,
                    user_agent=request.headers.get("user-agent"),
                )
        except TelehealthError as exc:  # the challenge expired or is not one: start again
            state = FormState(message=translate(language, exc.detail))
            return page(request, "login.html", status_code=401, form=state, next=target)
        if outcome.tokens is None:
            text = _refusal_text(
                language,
                outcome.refusal,
                "Wrong or already used code. Type the six digits the app shows now, or a recovery code.",
            )
            state = FormState(message=text)
            return page(
                request,
                "second_factor.html",
                status_code=401,
                form=state,
                challenge=challenge,
                next=target,
            )
        return _signed_in(request, settings, outcome, target)

    @get("/session/refresh")
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        settings: SettingsDep,
        next: FromQuery[str] = "/",
    ) -> Redirect:
        target = safe_next(next)
        token = request.cookies.get(REFRESH_COOKIE, "")
        pair = None
        if token:
            try:
                async with db.unit_of_work() as session:
                    if idle_for(settings, request.cookies.get(ACTIVITY_COOKIE)):
                        # Idle too long: the session ends for good (telehealth.http.cookies).
                        await sign_in.log_out(session, token)
                    else:
                        pair = await sign_in.refresh(session, settings, token)
            except TelehealthError:
                pair = None
        if pair is None:
            return Redirect(
                f"/login?next={target}", status_code=303, cookies=cleared_session_cookies(settings)
            )
        cookies = session_cookies(settings, pair.access_token, pair.refresh_token)
        return Redirect(target, status_code=303, cookies=cookies)

    @post("/session/logout")
    async def logout(
        self, request: Request[Any, Any, Any], db: DatabaseDep, settings: SettingsDep
    ) -> Redirect:
        token = request.cookies.get(REFRESH_COOKIE)
        if token:
            async with db.unit_of_work() as session:
                await sign_in.log_out(session, token)
        return Redirect("/login", status_code=303, cookies=cleared_session_cookies(settings))

    @get("/lang/{language:str}")
    async def switch_language(
        self,
        language: FromPath[str],
        settings: SettingsDep,
        next: FromQuery[str] = "/",
    ) -> Redirect:
        chosen = language if language in LANGUAGES else LANGUAGES[0]
        return Redirect(
            safe_next(next), status_code=303, cookies=[language_cookie(settings, chosen)]
        )

    @get("/account/password")
    async def password_form(
        self, request: Request[Any, Any, Any], db: DatabaseDep, caller: CallerDep
    ) -> Template:
        return await _password_page(request, db, caller, FormState())

    @post("/account/password")
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        values = await posted(request)
        language = page_language(request)
        state = FormState()
        new = values.get("new_password", "")
        if new != values.get("confirm_password", ""):
            state.errors["confirm_password"] = translate(
                language, "does not match the new password"
            )
        if not state:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await service.change_password(
                        session,
                        settings,
                        caller,
                        values.get("current_password", "")[:200],
                        new[:200],
                    )
            except TelehealthError as exc:
                refused(state, exc, language)
        if state:
            return await _password_page(request, db, caller, state, status_code=422)
        # Every session of this account was ended; log in again with the new password.
        return Redirect(
            "/login?changed=1", status_code=303, cookies=cleared_session_cookies(settings)
        )
