"""The web application: server-rendered pages over the same services and rules as /api.

``create_web(settings)`` gives what ``create_app`` wires in: the page router (CSRF-checked
forms, HTML error pages), the static files, the live-updates socket and the template engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from litestar import Router
from litestar.config.compression import CompressionConfig
from litestar.datastructures import CacheControlHeader
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.compression import CompressionMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from telehealth.http.cookies import csrf_config
from telehealth.settings import Settings
from telehealth.web.errors import handle_page_exception
from telehealth.web.live import live_updates
from telehealth.web.pages.conclusion import ConclusionPages
from telehealth.web.pages.consent import ConsentPages
from telehealth.web.pages.consults import ConsultPages
from telehealth.web.pages.desk import DeskPages
from telehealth.web.pages.facilities import FacilityPages
from telehealth.web.pages.home import HomePage
from telehealth.web.pages.patients import PatientPages
from telehealth.web.pages.people import AccountPages, PractitionerPages
from telehealth.web.pages.session import SessionPages
from telehealth.web.pages.system import AuditPages, ClientPages
from telehealth.web.pages.two_factor import TwoFactorPages

HERE = Path(__file__).parent

# Page controllers, in menu order. Consult pages are added here (see docs/web.md).
PAGE_CONTROLLERS: list[ControllerRouterHandler] = [
    SessionPages,
    TwoFactorPages,
    HomePage,
    PatientPages,
    ConsentPages,
    ConsultPages,
    DeskPages,
    ConclusionPages,
    FacilityPages,
    PractitionerPages,
    AccountPages,
    ClientPages,
    AuditPages,
]


@dataclass(frozen=True)
class Web:
    routes: list[ControllerRouterHandler]
    templates: TemplateConfig[JinjaTemplateEngine]


def create_web(settings: Settings) -> Web:
    # Pages and assets are text: gzip them for slow links (the API keeps its own choice).
    gzip = DefineMiddleware(
        CompressionMiddleware, config=CompressionConfig(backend="gzip", minimum_size=500)
    )
    pages = Router(
        path="/",
        route_handlers=PAGE_CONTROLLERS,
        middleware=[gzip, DefineMiddleware(CSRFMiddleware, config=csrf_config(settings))],
        exception_handlers={Exception: handle_page_exception},
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/static",
        directories=[HERE / "static"],
        cache_control=CacheControlHeader(max_age=3600, public=True),
        middleware=[gzip],
        include_in_schema=False,
    )
    templates = TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)
    return Web(routes=[pages, static, live_updates], templates=templates)
