"""The registry: which code fires each timer kind, and the daily jobs. Add lines here.

A kind's handler lives in its own area (``telehealth/consults/timers.py``, ...) and is listed
in ``DOMAIN_HANDLERS``; work done once a day is a ``DailyJob`` in ``DAILY_JOBS``. A process
claims only the kinds it has a handler for, so a kind written before its handler is deployed
waits, pending. How to write a handler: docs/timers.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from telehealth.scheduling.handlers import DailyJob, Handler
from telehealth.settings import Settings

# Kinds written by the consults area (issue 3); their handlers are wired here when it merges:
#   appointment.reminder  payload {"lead_minutes": N}   room.open   appointment.no_show
#   request.escalate      slot.hold_expire
DOMAIN_HANDLERS: dict[str, Handler] = {}

# e.g. DailyJob("extend_slot_horizon", time(2, 0), extend_slot_horizons)
DAILY_JOBS: list[DailyJob] = []


def timer_handlers(settings: Settings) -> Mapping[str, Handler]:
    """Every kind this process fires: the domain's, the daily jobs', and test kinds if asked."""
    handlers: dict[str, Handler] = dict(DOMAIN_HANDLERS)
    handlers.update({job.kind: job.run for job in DAILY_JOBS})
    if settings.timer_test_handlers:  # TELEHEALTH_TIMER_TEST_HANDLERS=1: tests and benchmarks
        from telehealth.scheduling.testing import TEST_HANDLERS

        handlers.update(TEST_HANDLERS)
    return handlers
