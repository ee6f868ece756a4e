"""Recordings stop when the patient withdraws consent: this process hears every withdrawal
(``consent.service.WITHDRAWN``, from any process once it commits) and ends its recordings of
that patient's sessions at once. After its listener was lost and is back, it checks every
recording it holds against the consents in the database, since notices sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from telehealth.consent.models import ConsentPurpose
from telehealth.consent.service import WITHDRAWN, active_purposes
from telehealth.db import Database
from telehealth.notices import Subscription
from telehealth.rtc.media import MediaPeers
from telehealth.settings import Settings

log = logging.getLogger("telehealth.rtc.recording_consent")

LISTENER_NAME = "telehealth-consent-listener"
# Withdrawing either ends the recording: there is no recording without a consultation.
_STOPS_RECORDING = {ConsentPurpose.SESSION_RECORDING, ConsentPurpose.REMOTE_CONSULTATION}


class RecordingConsentWatch:
    def __init__(self, settings: Settings, db: Database, media: MediaPeers) -> None:
        self._db, self._media = db, media
        self._stopping: set[asyncio.Task[None]] = set()
        self._started = False
        self._notices = Subscription(
            settings.resolved_database_url, WITHDRAWN, self, name=LISTENER_NAME
        )

    async def start(self) -> None:
        await self._notices.start()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self._notices.stop()
        for task in list(self._stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def hear(self, payload: str) -> None:
        patient, _, purpose = payload.partition(" ")
        try:
            patient_id, withdrawn = uuid.UUID(patient), ConsentPurpose(purpose)
        except ValueError:
            log.warning("recording consent: ignored a malformed notice %r", payload)
            return
        if withdrawn in _STOPS_RECORDING and patient_id in self._media.recorded_patients():
            self._later(self._media.stop_recordings_of(patient_id))

    def heard(self) -> None:
        if self._started:  # reconnected: withdrawals announced meanwhile were not heard
            self._later(self._recheck())

    def deaf(self) -> None:
        pass  # ``heard`` checks what was missed

    async def _recheck(self) -> None:
        for patient_id in self._media.recorded_patients():
            async with self._db.unit_of_work() as session:
                active = await active_purposes(session, patient_id)
            if not _STOPS_RECORDING.issubset(active):
                await self._media.stop_recordings_of(patient_id)
