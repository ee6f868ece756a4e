"""Log in (with a second factor where there is one), refresh, log out, change password, enrol
an authenticator; OAuth client credentials for systems."""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from pydantic import BaseModel, ConfigDict, Field

from telehealth.auth import login as sign_in
from telehealth.auth import service, two_factor
from telehealth.auth.login import LoginOutcome, TokenPair
from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.errors import NotAuthenticated
from telehealth.http.dependencies import (
    CallerDep,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    request_origin,
)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class SecondFactorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    challenge: str = Field(min_length=1, max_length=1000)
    code: str = Field(
        min_length=1, max_length=40, description="six digits from the app, or a recovery code"
    )


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=40, description="six digits from the app")


class PasswordConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=200)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=200)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


class ClientCredentials(BaseModel):
    grant_type: str = Field(pattern="^client_credentials$")
    client_id: str | None = Field(default=None, max_length=64)
    client_secret: str | None = Field(default=None, max_length=200)
    scope: str | None = Field(default=None, max_length=2000)


class Identity(BaseModel):
    kind: str
    id: str
    name: str
    role: Role | None
    organization_id: str | None
    practitioner_id: str | None
    scopes: list[str]
    language: str
    must_change_password: bool = False
    must_enrol_two_factor: bool = False


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105  (the OAuth token type, not a secret)
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None
    identity: Identity


class SecondFactorRequired(BaseModel):
    """The password was right; send a code with the challenge to /api/auth/login/second-factor."""

    second_factor_required: bool = True
    challenge: str
    expires_in: int
    methods: list[str] = ["totp", "recovery_code"]


class TwoFactorEnrolment(BaseModel):
    secret: str = Field(description="base32, to type into the app by hand")
    otpauth_uri: str = Field(description="what the QR code holds")
    qr_svg: str = Field(description="the QR code as an SVG element")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="each works once; shown only this time")


class TwoFactorStatus(BaseModel):
    enrolled: bool
    required: bool
    enrolled_at: datetime | None
    recovery_codes_left: int


def identity_of(principal: Principal) -> Identity:
    return Identity(
        kind=principal.kind,
        id=str(principal.id),
        name=principal.name,
        role=principal.role,
        organization_id=str(principal.organization_id) if principal.organization_id else None,
        practitioner_id=str(principal.practitioner_id) if principal.practitioner_id else None,
        scopes=sorted(principal.scopes),
        language=principal.language,
        must_change_password=principal.must_change_password,
        must_enrol_two_factor=principal.must_enrol_two_factor,
    )


def _token_response(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        scope=" ".join(sorted(pair.principal.scopes)) or None,
        identity=identity_of(pair.principal),
    )


def _tokens_or_refusal(outcome: LoginOutcome) -> TokenPair:
    """A refusal is raised only here, after its unit of work committed (it counts)."""
    if outcome.refusal is not None:
        raise outcome.refusal
    if outcome.tokens is None:
        raise NotAuthenticated("Log in again")
    return outcome.tokens


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
        raise NotAuthenticated("Malformed Basic credentials") from exc
    return client_id, secret


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Log in with username and password",
        description="Gives tokens, or, for an account with an authenticator, a challenge to "
        "send with a code to /api/auth/login/second-factor.",
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        db: DatabaseDep,
        settings: SettingsDep,
    ) -> TokenResponse | SecondFactorRequired:
        origin = request_origin(request)
        async with db.unit_of_work() as session:
            outcome = await sign_in.log_in(
                session,
                settings,
                data.username,
                data.password,
                ip=origin.ip,
                user_agent=origin.user_agent,
                request_id=origin.request_id,
            )
        if outcome.challenge is not None:
            return SecondFactorRequired(
                challenge=outcome.challenge, expires_in=two_factor.CHALLENGE_TTL_S
            )
        return _token_response(_tokens_or_refusal(outcome))

    @post(
        "/login/second-factor",
        status_code=HTTP_200_OK,
        summary="Finish logging in with a code from the app or a recovery code",
    )
    async def second_factor(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SecondFactorRequest],
        db: DatabaseDep,
        settings: SettingsDep,
    ) -> TokenResponse:
        origin = request_origin(request)
        async with db.unit_of_work() as session:
            outcome = await sign_in.complete_login(
                session,
                settings,
                data.challenge,
                data.code,
                ip=origin.ip,
                user_agent=origin.user_agent,
                request_id=origin.request_id,
            )
        return _token_response(_tokens_or_refusal(outcome))

    @post("/refresh", status_code=HTTP_200_OK, summary="Exchange a refresh token for new tokens")
    async def refresh(
        self, data: JSONBody[RefreshRequest], db: DatabaseDep, settings: SettingsDep
    ) -> TokenResponse:
        async with db.unit_of_work() as session:
            return _token_response(await sign_in.refresh(session, settings, data.refresh_token))

    @post("/logout", status_code=HTTP_204_NO_CONTENT, summary="Revoke a refresh token")
    async def logout(
        self, data: JSONBody[RefreshRequest], session: SessionDep, caller: CallerDep
    ) -> None:
        await sign_in.log_out(session, data.refresh_token, owner=caller.principal.id)

    @post(
        "/token", status_code=HTTP_200_OK, summary="OAuth 2.0 client credentials for system clients"
    )
    async def token(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[ClientCredentials, Body(media_type=RequestEncodingType.URL_ENCODED)],
        db: DatabaseDep,
        settings: SettingsDep,
    ) -> TokenResponse:
        basic = _basic_credentials(request.headers.get("authorization"))
        client_id, secret = basic or (data.client_id or "", data.client_secret or "")
        async with db.unit_of_work() as session:
            return _token_response(
                await service.client_token(session, settings, client_id, secret, data.scope)
            )

    @get("/me", summary="Who the token belongs to")
    async def me(self, caller: CallerDep) -> Identity:
        return identity_of(caller.principal)

    @post(
        "/password",
        status_code=HTTP_204_NO_CONTENT,
        summary="Change your password",
        description="Ends every session of the account, this one included: log in again.",
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> None:
        await service.change_password(
            session, settings, caller, data.current_password, data.new_password
        )

    @get("/two-factor", summary="Your two-factor sign-in: on or not, required, codes left")
    async def two_factor_status(
        self, session: SessionDep, caller: CallerDep, settings: SettingsDep
    ) -> TwoFactorStatus:
        account = await two_factor.own_account(session, caller)
        state = await two_factor.state_of(session, settings, account)
        return TwoFactorStatus(**dataclasses.asdict(state))

    @post(
        "/two-factor",
        status_code=HTTP_200_OK,
        summary="Start enrolling an authenticator app",
        description="Gives the secret (and a QR code of it) to add to the app; it counts once "
        "a code from it is sent to /api/auth/two-factor/confirm.",
    )
    async def start_two_factor(
        self, session: SessionDep, caller: CallerDep, settings: SettingsDep
    ) -> TwoFactorEnrolment:
        enrolment = await two_factor.start_enrolment(session, settings, caller)
        return TwoFactorEnrolment(
            secret=enrolment.secret, otpauth_uri=enrolment.uri, qr_svg=enrolment.qr_svg
        )

    @post(
        "/two-factor/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm the authenticator with a first code; get recovery codes",
        description="Ends every session of the account, this one included: log in again, "
        "with a code.",
    )
    async def confirm_two_factor(
        self,
        data: JSONBody[CodeRequest],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> RecoveryCodes:
        codes = await two_factor.confirm_enrolment(session, settings, caller, data.code)
        return RecoveryCodes(recovery_codes=codes)

    @post(
        "/two-factor/recovery-codes",
        status_code=HTTP_200_OK,
        summary="New recovery codes in place of the old ones",
    )
    async def renew_recovery_codes(
        self,
        data: JSONBody[CodeRequest],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> RecoveryCodes:
        codes = await two_factor.renew_recovery_codes(session, settings, caller, data.code)
        return RecoveryCodes(recovery_codes=codes)

    @post(
        "/two-factor/off",
        status_code=HTTP_204_NO_CONTENT,
        summary="Turn two-factor sign-in off (where your role does not require it)",
    )
    async def turn_off_two_factor(
        self,
        data: JSONBody[PasswordConfirmation],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> None:
        await two_factor.turn_off(session, settings, caller, data.password)
