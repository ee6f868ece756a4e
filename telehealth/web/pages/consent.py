"""The patient's consent on the patient's page: the requesting doctor records it (each
purpose an unticked box, how it was given, the witness or the scan) and records its withdrawal."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from litestar import Controller, Request, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import audited_unit_of_work
from telehealth.consent.models import ConsentPurpose
from telehealth.consent.schemas import ConsentCreate, WithdrawalInput
from telehealth.consults import consents
from telehealth.errors import TelehealthError
from telehealth.http.dependencies import CallerDep, DatabaseDep
from telehealth.web.forms import FormState, posted, refused, validate
from telehealth.web.pages.patients import patient_page
from telehealth.web.render import page_language

OPTIONAL_FIELDS = ("method", "witness_name", "scan_attachment_id")


def _consent_data(values: dict[str, str]) -> dict[str, Any]:
    """Only the boxes the doctor ticked are purposes; none is assumed."""
    purposes = [p.value for p in ConsentPurpose if values.get(f"purpose_{p.value}")]
    return {"purposes": purposes} | {
        name: values[name] for name in OPTIONAL_FIELDS if values.get(name)
    }


class ConsentPages(Controller):
    path = "/patients/{patient_id:uuid}/consents"
    include_in_schema = False

    async def _saved_or_refused(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        patient_id: uuid.UUID,
        form: FormState,
        change: Callable[[AsyncSession], Awaitable[object]] | None,
    ) -> Template | Redirect:
        """Back to the patient's consents once ``change`` is saved; the patient's page again,
        with the refusal, when the form or the service refuses (not when access does)."""
        if change is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await change(session)
                return Redirect(f"/patients/{patient_id}?saved=1#consent", status_code=303)
            except TelehealthError as exc:
                if exc.status_code in (403, 404):
                    raise
                refused(form, exc, page_language(request))
        async with audited_unit_of_work(db, caller) as session:
            return await patient_page(request, session, caller, patient_id, form, status=422)

    @post("/")
    async def record(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = await posted(request)
        data, form = validate(ConsentCreate, _consent_data(values), values, language)
        change = (
            None
            if data is None
            else partial(consents.record_consents, caller=caller, patient_id=patient_id, data=data)
        )
        return await self._saved_or_refused(request, db, caller, patient_id, form, change)

    @post("/{consent_id:uuid}/withdraw")
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        consent_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = await posted(request)
        reason = values.get("reason") or None
        data, form = validate(WithdrawalInput, {"reason": reason}, values, language)
        change = (
            None
            if data is None
            else partial(
                consents.withdraw_consent,
                caller=caller,
                patient_id=patient_id,
                consent_id=consent_id,
                reason=data.reason,
            )
        )
        return await self._saved_or_refused(request, db, caller, patient_id, form, change)
