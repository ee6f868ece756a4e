"""Imports every table module so that ``SQLModel.metadata`` knows the whole schema.

Alembic and the test-suite import this; each new area adds its ``models`` module here.
"""

from __future__ import annotations

from telehealth import idempotency as idempotency_models
from telehealth import pubsub as event_models
from telehealth.auth import models as auth_models
from telehealth.availability import models as availability_models
from telehealth.consent import models as consent_models
from telehealth.consults import models as consult_models
from telehealth.directory import models as directory_models
from telehealth.fhir import models as fhir_models
from telehealth.notifications import models as notification_models
from telehealth.rtc import models as rtc_models
from telehealth.timers import models as timer_models

__all__ = [
    "auth_models",
    "availability_models",
    "consent_models",
    "consult_models",
    "directory_models",
    "event_models",
    "fhir_models",
    "idempotency_models",
    "notification_models",
    "rtc_models",
    "timer_models",
]
