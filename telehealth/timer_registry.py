"""The registry: which code fires each timer kind, and the daily jobs. Add lines here.

Part of the composition root: the timer loops (``telehealth/timers/``) know no area, and
``create_app`` hands them this table. A kind's handler lives in its own area (``telehealth/consults/jobs.py``, ...) and is listed
in ``DOMAIN_HANDLERS``; work done once a day is a ``DailyJob`` in ``DAILY_JOBS``. A process
claims only the kinds it has a handler for, so a kind written before its handler is deployed
waits, pending. How to write a handler: docs/timers.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time

from telehealth.auth.audit_keeping import prune_audit_daily
from telehealth.auth.idle import JOB_NAME as DISABLE_IDLE_ACCOUNTS
from telehealth.auth.idle import disable_idle_accounts
from telehealth.auth.throttle import forget_old_failures
from telehealth.consults.escalation import escalate_request
from telehealth.consults.jobs import (
    close_expired_rooms_daily,
    expire_hold,
    expire_stale_drafts,
    extend_slot_horizons,
    mark_no_show,
    open_room,
    send_reminder,
)
from telehealth.db import Database
from telehealth.idempotency import purge_expired_keys
from telehealth.notifications.delivery import NotificationDelivery, Publish
from telehealth.settings import Settings
from telehealth.timers.handlers import Configured, DailyJob, Handler
from telehealth.timers.metrics import LoopMetrics
from telehealth.timers.runner import TimerService

DOMAIN_HANDLERS: dict[str, Handler | Configured] = {
    "appointment.reminder": send_reminder,
    "request.escalate": Configured(escalate_request),
    "room.open": Configured(open_room),
    "appointment.no_show": mark_no_show,
    "slot.hold_expire": expire_hold,
}

DAILY_JOBS: list[DailyJob] = [
    DailyJob("extend_slot_horizon", time(2, 0), Configured(extend_slot_horizons)),
    DailyJob("expire_stale_drafts", time(2, 30), Configured(expire_stale_drafts)),
    DailyJob("close_expired_rooms", time(3, 0), close_expired_rooms_daily),
    DailyJob("purge_idempotency_keys", time(3, 30), purge_expired_keys),
    DailyJob("forget_old_login_failures", time(3, 45), Configured(forget_old_failures)),
    DailyJob("prune_audit", time(4, 0), Configured(prune_audit_daily)),
    DailyJob(DISABLE_IDLE_ACCOUNTS, time(4, 15), Configured(disable_idle_accounts)),
]


def _bound(handler: Handler | Configured, settings: Settings) -> Handler:
    return handler.bind(settings) if isinstance(handler, Configured) else handler


def timer_handlers(settings: Settings) -> Mapping[str, Handler]:
    """Every kind this process fires: the domain's, the daily jobs', and test kinds if asked."""
    handlers: dict[str, Handler] = {
        kind: _bound(handler, settings) for kind, handler in DOMAIN_HANDLERS.items()
    }
    handlers.update({job.kind: _bound(job.run, settings) for job in DAILY_JOBS})
    if settings.timer_test_handlers:  # TELEHEALTH_TIMER_TEST_HANDLERS=1: tests and benchmarks
        from telehealth.timer_test_kinds import TEST_HANDLERS

        handlers.update(TEST_HANDLERS)
    return handlers


def timer_service(db: Database, settings: Settings, publish: Publish | None) -> TimerService:
    """This process's loops: the timers of every kind above, the daily jobs, the deliveries."""
    delivery = NotificationDelivery(db, settings, publish, LoopMetrics())
    return TimerService(db, settings, timer_handlers(settings), DAILY_JOBS, delivery)
