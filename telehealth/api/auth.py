"""Log in, refresh, log out, change password; OAuth client credentials for systems."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from pydantic import BaseModel, ConfigDict, Field

from telehealth.api.dependencies import (
    CallerDep,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    request_origin,
)
from telehealth.auth import service
from telehealth.auth.models import Role
from telehealth.auth.principal import Principal
from telehealth.auth.service import TokenPair
from telehealth.errors import NotAuthenticated


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
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


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105  (the OAuth token type, not a secret)
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None
    identity: Identity


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
    )


def _token_response(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        scope=" ".join(sorted(pair.principal.scopes)) or None,
        identity=identity_of(pair.principal),
    )


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

    @post("/login", status_code=HTTP_200_OK, summary="Log in with username and password")
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        db: DatabaseDep,
        settings: SettingsDep,
    ) -> TokenResponse:
        origin = request_origin(request)
        async with db.unit_of_work() as session:
            outcome = await service.log_in(
                session,
                settings,
                data.username,
                data.password,
                ip=origin.ip,
                user_agent=origin.user_agent,
                request_id=origin.request_id,
            )
        if outcome.refusal is not None:
            raise outcome.refusal
        assert outcome.tokens is not None
        return _token_response(outcome.tokens)

    @post("/refresh", status_code=HTTP_200_OK, summary="Exchange a refresh token for new tokens")
    async def refresh(
        self, data: JSONBody[RefreshRequest], db: DatabaseDep, settings: SettingsDep
    ) -> TokenResponse:
        async with db.unit_of_work() as session:
            return _token_response(await service.refresh(session, settings, data.refresh_token))

    @post("/logout", status_code=HTTP_204_NO_CONTENT, summary="Revoke a refresh token")
    async def logout(
        self, data: JSONBody[RefreshRequest], session: SessionDep, caller: CallerDep
    ) -> None:
        await service.log_out(session, data.refresh_token, owner=caller.principal.id)

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
