"""Recordings stop when the patient withdraws consent: this process hears every withdrawal
(``consent.checks.WITHDRAWN``, from any process once it commits) and ends its recordings of
that patient's sessions at once. After its listener was lost and is back, it checks every
recording it holds against the consents in the database, since notices sent meanwhile are lost.
"""

from __future__ import annotations

import logging
import uuid

from telehealth.consent.checks import WITHDRAWN, active_purposes
from telehealth.consent.models import ConsentPurpose
from telehealth.db import Database
from telehealth.notices import CatchingUp
from telehealth.rtc.media import MediaPeers
from telehealth.settings import Settings

log = logging.getLogger("telehealth.rtc.recording_consent")

LISTENER_NAME = "telehealth-consent-listener"
# Withdrawing either ends the recording: there is no recording without a consultation.
_STOPS_RECORDING = {ConsentPurpose.SESSION_RECORDING, ConsentPurpose.REMOTE_CONSULTATION}


class RecordingConsentWatch(CatchingUp):
    def __init__(self, settings: Settings, db: Database, media: MediaPeers) -> None:
        super().__init__(settings.resolved_database_url, WITHDRAWN, name=LISTENER_NAME)
        self._db, self._media = db, media

    def hear(self, payload: str) -> None:
        patient, _, purpose = payload.partition(" ")
        try:
            patient_id, withdrawn = uuid.UUID(patient), ConsentPurpose(purpose)
        except ValueError:
            log.warning("recording consent: ignored a malformed notice %r", payload)
            return
        if withdrawn in _STOPS_RECORDING and patient_id in self._media.recorded_patients():
            self.later(self._media.stop_recordings_of(patient_id))

    async def catch_up(self) -> None:
        for patient_id in self._media.recorded_patients():
            async with self._db.unit_of_work() as session:
                active = await active_purposes(session, patient_id)
            if not _STOPS_RECORDING.issubset(active):
                await self._media.stop_recordings_of(patient_id)
