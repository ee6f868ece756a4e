"""What controllers receive: settings, the database, the caller, and a unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.principal import Caller, Principal, RequestOrigin
from telehealth.db import Database
from telehealth.settings import Settings


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_db(state: State) -> Database:
    db: Database = state.db
    return db


def request_origin(request: Request[Any, Any, Any]) -> RequestOrigin:
    return RequestOrigin(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request.scope.get("state", {}).get("request_id"),
    )


def provide_caller(request: Request[Principal, Any, Any]) -> Caller:
    origin = request_origin(request)
    return Caller(
        principal=request.user,
        ip=origin.ip,
        user_agent=origin.user_agent,
        request_id=origin.request_id,
    )


async def provide_session(
    db: NamedDependency[Database], caller: NamedDependency[Caller]
) -> AsyncIterator[AsyncSession]:
    """One audited transaction per request, committed before the response is sent."""
    async with audited_unit_of_work(db, caller) as session:
        yield session


# Parameter types controllers declare, so litestar knows they are injected, not query fields.
SessionDep = NamedDependency[AsyncSession]
CallerDep = NamedDependency[Caller]
DatabaseDep = NamedDependency[Database]
SettingsDep = NamedDependency[Settings]
ChannelsDep = NamedDependency[ChannelsPlugin]
