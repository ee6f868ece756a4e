"""create_app(settings): the one place that wires the service together."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from telehealth import __version__
from telehealth.api.admin import AdminController
from telehealth.api.auth import AuthController
from telehealth.api.availability import AvailabilityController, SlotController
from telehealth.api.consent import ConsentController
from telehealth.api.consults import AppointmentController, ConsultController
from telehealth.api.directory import (
    OrganizationController,
    PatientController,
    PractitionerController,
    PractitionerRoleController,
    SpecialtyController,
)
from telehealth.api.health import health
from telehealth.api.idempotency import provide_idempotent
from telehealth.api.metrics import metrics
from telehealth.api.notifications import (
    NotificationController,
    TimerAdminController,
    live_notifications,
)
from telehealth.api.rooms import RoomController, room_page, room_script, room_socket, room_style
from telehealth.api.terminology import search_icd10
from telehealth.auth.revocation import SessionResets
from telehealth.fhir.cache import read_cache
from telehealth.fhir.controllers import FhirController, FhirDiscoveryController
from telehealth.fhir.operation_controllers import (
    FhirBinaryController,
    FhirOperationDefinitionController,
    FhirSchedulingController,
)
from telehealth.fhir.outcome import FHIR_JSON, operation_outcome
from telehealth.http import problems
from telehealth.http.channels import create_channels
from telehealth.http.cookies import renew_activity
from telehealth.http.dependencies import (
    provide_caller,
    provide_db,
    provide_session,
    provide_settings,
)
from telehealth.http.middleware import (
    PUBLIC_PATHS,
    BearerTokenMiddleware,
    DepthCheckedRequest,
    QueryStringsOut,
    RequestLogMiddleware,
    add_request_id,
    add_security_headers,
    count_request,
)
from telehealth.http.problems import ErrorAnswers
from telehealth.reactions import open_database
from telehealth.rtc.closures import RoomClosures
from telehealth.rtc.media import MediaPeers
from telehealth.rtc.recording_consent import RecordingConsentWatch
from telehealth.rtc.relay_lease import RelayRouter
from telehealth.settings import Settings
from telehealth.storage import private_data_dir
from telehealth.timer_registry import timer_service
from telehealth.web import create_web
from telehealth.web.errors import handle_page_exception


@asynccontextmanager
async def scheduler_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start this process's timer and delivery loops after the database is open (unless
    disabled)."""
    settings: Settings = app.state.settings
    if not settings.scheduler_enabled:
        app.state.timers = None
        yield
        return
    service = timer_service(app.state.db, settings, app.plugins.get(ChannelsPlugin).publish)
    app.state.timers = service
    service.start()
    try:
        yield
    finally:
        await service.stop()


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings()
    channels = create_channels(settings)
    web = create_web(settings)
    errors = ErrorAnswers(
        page_error=handle_page_exception, fhir_outcome=operation_outcome, fhir_media_type=FHIR_JSON
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        private_data_dir(settings.data_dir)
        db = open_database(settings, channels.publish)  # telehealth.reactions: what commits do
        app.state.db = db
        app.state.media = MediaPeers(db, settings)
        app.state.relay = RelayRouter(db, settings, channels, app.state.media)
        app.state.recording_consent = RecordingConsentWatch(settings, db, app.state.media)
        await app.state.recording_consent.start()
        app.state.session_resets = SessionResets(settings, db)
        await app.state.session_resets.start()
        app.state.room_closures = RoomClosures(settings, db)
        await app.state.room_closures.start()
        app.state.fhir_cache = read_cache(settings)
        if app.state.fhir_cache is not None:
            await app.state.fhir_cache.start()
        if settings.gc_freeze:
            # A full collection walks every object alive: the ~250,000 of the started service
            # took 80-95 ms here, a pause for every request in flight, every few seconds under
            # load. What is alive now lives as long as the process: leave it out of them.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if settings.gc_freeze:
                gc.unfreeze()
            if app.state.fhir_cache is not None:
                await app.state.fhir_cache.stop()
            await app.state.session_resets.stop()
            await app.state.room_closures.stop()
            await app.state.recording_consent.stop()
            await app.state.relay.close()
            await app.state.media.close()
            await db.dispose()

    app = Litestar(
        route_handlers=[
            health,
            metrics,
            AuthController,
            AdminController,
            OrganizationController,
            SpecialtyController,
            PractitionerController,
            PractitionerRoleController,
            PatientController,
            ConsentController,
            *web.routes,
            FhirDiscoveryController,
            FhirSchedulingController,
            FhirOperationDefinitionController,
            FhirBinaryController,
            FhirController,
            RoomController,
            room_socket,
            room_page,
            room_script,
            room_style,
            AvailabilityController,
            SlotController,
            ConsultController,
            AppointmentController,
            search_icd10,
            NotificationController,
            TimerAdminController,
            live_notifications,
        ],
        template_config=web.templates,
        lifespan=[lifespan, scheduler_lifespan],
        plugins=[channels],
        state=State({"settings": settings}),
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "db": Provide(provide_db, sync_to_thread=False),
            "caller": Provide(provide_caller, sync_to_thread=False),
            "session": Provide(provide_session),
            "idempotent": Provide(provide_idempotent, sync_to_thread=False),
        },
        request_class=DepthCheckedRequest,
        before_send=[add_request_id, add_security_headers, count_request, renew_activity],
        middleware=[
            RequestLogMiddleware,
            DefineMiddleware(BearerTokenMiddleware, exclude=PUBLIC_PATHS),
        ],
        exception_handlers={
            Exception: errors.handle_exception,
            ExceptionGroup: errors.handle_exception_group,
        },
        openapi_config=OpenAPIConfig(
            title="Telehealth API",
            version=__version__,
            description="Remote consults between commune/district clinics and provincial specialists.",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            security=[{"bearer": []}],
            # Swagger UI alone: the one interactive page whose CDN the security policy names.
            render_plugins=[SwaggerRenderPlugin(), JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        cors_config=None
        if not settings.public_base_url
        else CORSConfig(allow_origins=[settings.public_base_url]),
        logging_config=None,
        debug=False,
    )
    problems.document_problems(app)
    return app


def configure_logging(level: str) -> None:
    """One JSON line per request on standard output (see ``RequestLogMiddleware``), and no
    query string (where tokens could be) in uvicorn's own lines."""
    logging.basicConfig(level=level.upper(), format="%(message)s", stream=sys.stdout)
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryStringsOut) for f in logger.filters):
            logger.addFilter(QueryStringsOut())


def create_app_from_environment() -> Litestar:
    """Factory for ``uvicorn --factory``: each worker process builds its app (and logging)."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
