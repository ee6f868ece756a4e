"""GET /metrics: figures for operators in Prometheus's text format, not for the public.

Each process's counters (``telehealth.metrics``), then what the database says at the moment
of the scrape, the same whichever process answers: timers due, deliveries by state, rooms open.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from litestar import Request, Response, get
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.access import check_account_admin
from telehealth.auth.tokens import read_access_token
from telehealth.errors import NotAuthenticated
from telehealth.http.dependencies import DatabaseDep, SettingsDep
from telehealth.notifications.models import Notification
from telehealth.rtc.models import Room, RoomState
from telehealth.settings import Settings
from telehealth.timers.metrics import timer_backlog
from telehealth.timers.models import Timer, TimerState
from telehealth.timeutil import utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    """Figures read from the database for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def _database_figures(session: AsyncSession, now: datetime) -> list[Metric]:
    timers = GaugeMetricFamily(
        "telehealth_timers",
        "Timers in the database by state; 'due' is pending and past due",
        labels=["state"],
    )
    for state, count in (await timer_backlog(session, now)).items():
        timers.add_metric([state], count)
    oldest = (
        await session.exec(
            select(func.min(Timer.due_at)).where(
                col(Timer.state) == TimerState.PENDING, col(Timer.due_at) <= now
            )
        )
    ).one()
    lag = GaugeMetricFamily(
        "telehealth_timer_backlog_seconds",
        "How long the oldest due timer has been waiting to fire (0 when none is due)",
    )
    lag.add_metric([], (now - oldest).total_seconds() if oldest is not None else 0.0)
    deliveries = GaugeMetricFamily(
        "telehealth_deliveries",
        "Notifications by channel and delivery state",
        labels=["channel", "state"],
    )
    rows = await session.exec(
        select(Notification.channel, Notification.state, func.count()).group_by(
            col(Notification.channel), col(Notification.state)
        )
    )
    for channel, state, count in rows.all():
        deliveries.add_metric([str(channel), str(state)], int(count))
    rooms = GaugeMetricFamily(
        "telehealth_rooms", "Video rooms open for joining, by state", labels=["state"]
    )
    open_states = (RoomState.OPEN, RoomState.ACTIVE)
    counted = dict(
        (
            await session.exec(
                select(Room.state, func.count())
                .where(col(Room.state).in_(open_states))
                .group_by(col(Room.state))
            )
        ).all()
    )
    for state in open_states:
        rooms.add_metric([state.value], int(counted.get(state, 0)))
    return [timers, lag, deliveries, rooms]


def _process_figures() -> bytes:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def exposition(session: AsyncSession, now: datetime) -> bytes:
    """The whole page: every process's counters, then the database's figures."""
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(await _database_figures(session, now)))
    return _process_figures() + generate_latest(snapshot)


def _check_scraper(request: Request[Any, Any, Any], settings: Settings) -> None:
    """The scraper's own token (``metrics_token``, for Prometheus's ``authorization``), or an
    administrator's access token; nobody else."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("Send 'Authorization: Bearer <metrics token>' to read the metrics")
    expected = settings.metrics_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return
    principal = read_access_token(
        token, settings.signing_key, request.app.state.get("session_resets")
    )
    check_account_admin(principal)


@get(
    "/metrics",
    tags=["operations"],
    summary="Figures for Prometheus: the metrics token or an administrator's token",
    media_type=CONTENT_TYPE,
)
async def metrics(
    request: Request[Any, Any, Any], db: DatabaseDep, settings: SettingsDep
) -> Response[bytes]:
    _check_scraper(request, settings)
    async with db.unit_of_work() as session:
        page = await exposition(session, utcnow())
    return Response(page, media_type=CONTENT_TYPE)
