"""Route guards: one of ``telehealth.auth.access``'s checks run on the caller before litestar
reads the body. A caller who may not use an endpoint is refused (403) whatever they send, and
learns nothing of what the endpoint would accept. The services check again: they are also
called by the web pages and the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from telehealth.auth.access import check_account_admin, check_directory_write
from telehealth.auth.principal import Principal


def allowed(check: Callable[[Principal], None]) -> Guard:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        check(connection.user)

    return guard


administrators = allowed(check_account_admin)


def directory_writers(resource: str) -> Guard:
    return allowed(lambda principal: check_directory_write(principal, resource))
