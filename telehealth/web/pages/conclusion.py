"""The specialist's conclusion, written right after the video call: ICD-10 diagnoses, what to
do next (treat locally, transfer, follow up, with its day), and advice. Saving it completes
the consult (``consults.conclusion.conclude_consult``, as ``POST /api/appointments/{id}/conclude``)
and tells the requesting doctor's open pages."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from telehealth.auth.audit import audited_unit_of_work
from telehealth.consults import booking, conclusion, service
from telehealth.consults.models import AppointmentStatus, Recommendation
from telehealth.consults.schemas import ConclusionInput
from telehealth.errors import TelehealthError
from telehealth.http.dependencies import CallerDep, DatabaseDep, SessionDep
from telehealth.timeutil import local, utcnow
from telehealth.web.forms import FormState, icd_codes, posted, refused, validate
from telehealth.web.render import page, page_language


class ConclusionPages(Controller):
    path = "/appointments/{appointment_id:uuid}/conclude"
    include_in_schema = False

    @get("/")
    async def form(
        self,
        request: Request[Any, Any, Any],
        appointment_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        appointment = await booking.get_appointment(session, caller, appointment_id)
        if appointment.status == AppointmentStatus.COMPLETED:  # concluded already: read it
            return Redirect(f"/consults/{appointment.request_id}#conclusion", status_code=303)
        await conclusion.check_may_conclude(session, caller, appointment_id)
        consult = await service.get_request(session, caller, appointment.request_id)
        codes = ", ".join(d["code"] for d in consult.diagnoses)
        return await _form(
            request, session, caller, appointment_id, FormState({"diagnoses": codes})
        )

    @post("/")
    async def conclude(
        self,
        request: Request[Any, Any, Any],
        appointment_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = await posted(request)
        data: dict[str, Any] = {
            "diagnoses": icd_codes(values.get("diagnoses", "")),
            **{k: values[k] for k in ("recommendation", "advice", "follow_up_on") if values.get(k)},
        }
        parsed, form = validate(ConclusionInput, data, values, language)
        if parsed is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    done = await conclusion.conclude_consult(
                        session, caller, appointment_id, parsed
                    )
                return Redirect(f"/consults/{done.request_id}?saved=1", status_code=303)
            except TelehealthError as exc:
                if exc.status_code in (403, 404):
                    raise
                refused(form, exc, language)
        async with db.unit_of_work() as session:
            return await _form(request, session, caller, appointment_id, form, status=422)


async def _form(
    request: Request[Any, Any, Any],
    session: Any,
    caller: Any,
    appointment_id: uuid.UUID,
    form: FormState,
    status: int = 200,
) -> Template:
    appointment = await booking.get_appointment(session, caller, appointment_id)
    consult = await service.get_request(session, caller, appointment.request_id)
    patient = await service.get_request_patient(session, caller, appointment.request_id)
    return page(
        request,
        "consults/conclude.html",
        status_code=status,
        form=form,
        appointment=appointment,
        consult=consult,
        patient=patient,
        recommendations=list(Recommendation),
        today=local(utcnow(), request.app.state.settings.tz).date().isoformat(),
    )
