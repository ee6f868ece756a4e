"""/api routes of the patient's consent: record, list, withdraw."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from telehealth.consent.schemas import ConsentCreate, ConsentRead, WithdrawalInput
from telehealth.consults import consents
from telehealth.http.dependencies import CallerDep, SessionDep


class ConsentController(Controller):
    path = "/api/patients/{patient_id:uuid}/consents"
    tags = ["consent"]

    @post("/")
    async def record(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[ConsentCreate],
        session: SessionDep,
        caller: CallerDep,
    ) -> list[ConsentRead]:
        """Record the patient's consent to each purpose named (nothing is assumed), with how
        it was given."""
        rows = await consents.record_consents(session, caller, patient_id, data)
        return [ConsentRead.model_validate(row) for row in rows]

    @get("/")
    async def list_all(
        self, patient_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> list[ConsentRead]:
        """Every consent of the patient, withdrawn ones too, newest first."""
        rows = await consents.list_consents(session, caller, patient_id)
        return [ConsentRead.model_validate(row) for row in rows]

    @post("/{consent_id:uuid}/withdraw", status_code=200)
    async def withdraw(
        self,
        patient_id: FromPath[uuid.UUID],
        consent_id: FromPath[uuid.UUID],
        data: JSONBody[WithdrawalInput],
        session: SessionDep,
        caller: CallerDep,
    ) -> ConsentRead:
        """The patient withdraws this consent: what it allowed stops from now on."""
        consent = await consents.withdraw_consent(
            session, caller, patient_id, consent_id, data.reason
        )
        return ConsentRead.model_validate(consent)
