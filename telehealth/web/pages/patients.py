"""Patients: find (diacritics optional), register, view (with their consents), edit — the
directory's use cases."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.principal import Caller
from telehealth.consent.models import ConsentMethod, ConsentPurpose
from telehealth.consults import consents, patient_access
from telehealth.directory import service
from telehealth.directory.identifiers import CCCD_PROVINCE_CODES
from telehealth.directory.models import Gender, Patient
from telehealth.directory.schemas import PatientCreate, PatientUpdate
from telehealth.errors import TelehealthError
from telehealth.http.dependencies import CallerDep, DatabaseDep, SessionDep
from telehealth.web.forms import FormState, clear_emptied, posted, refused, to_schema
from telehealth.web.render import page, page_language

PATIENT_FIELDS = (
    "full_name",
    "gender",
    "birth_date",
    "national_id",
    "insurance_number",
    "phone",
    "address",
    "admin_unit_code",
)
PAGE_SIZE = 25


def _form_values(patient: Patient) -> dict[str, str]:
    return {
        name: "" if getattr(patient, name) is None else str(getattr(patient, name))
        for name in PATIENT_FIELDS
    }


def _form_page(
    request: Request[Any, Any, Any], form: FormState, *, patient: Patient | None, status: int = 200
) -> Template:
    return page(
        request,
        "patients/form.html",
        status_code=status,
        form=form,
        patient=patient,
        genders=list(Gender),
        province_codes=" ".join(sorted(CCCD_PROVINCE_CODES)),
    )


async def patient_page(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    caller: Caller,
    patient_id: uuid.UUID,
    consent_form: FormState,
    status: int = 200,
) -> Template:
    """The patient's record with their consents and the form to record one."""
    patient = await patient_access.get_patient(session, caller, patient_id)
    facility = await service.get_organization(session, caller, patient.organization_id)
    return page(
        request,
        "patients/view.html",
        status_code=status,
        patient=patient,
        facility=facility,
        saved=bool(request.query_params.get("saved")),
        consents=await consents.list_consents(session, caller, patient_id),
        scans=[(s.id, s.filename) for s in await consents.scans_of(session, patient_id)],
        purposes=list(ConsentPurpose),
        methods=list(ConsentMethod),
        consent_form=consent_form,
    )


class PatientPages(Controller):
    path = "/patients"
    include_in_schema = False

    @get("/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        caller: CallerDep,
        q: Annotated[str, QueryParameter(max_length=120)] = "",
        identifier: Annotated[str, QueryParameter(max_length=20)] = "",
        offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    ) -> Template:
        form = FormState(values={"q": q, "identifier": identifier})
        rows: list[Patient] = []
        total = 0
        try:
            found, total = await service.search_patients(
                session,
                caller,
                name=q or None,
                identifier=identifier or None,
                limit=PAGE_SIZE,
                offset=offset,
            )
            rows = list(found)
        except TelehealthError as exc:
            refused(form, exc, page_language(request))
            if "name" in form.errors:  # the API's 'name' is this form's 'q'
                form.errors["q"] = form.errors.pop("name")
                form.message = None
        return page(
            request,
            "patients/search.html",
            form=form,
            rows=rows,
            total=total,
            offset=offset,
            page_size=PAGE_SIZE,
        )

    @get("/new")
    async def new_form(self, request: Request[Any, Any, Any]) -> Template:
        return _form_page(request, FormState(), patient=None)

    @post("/new")
    async def register(
        self, request: Request[Any, Any, Any], db: DatabaseDep, caller: CallerDep
    ) -> Template | Redirect:
        language = page_language(request)
        data, form = to_schema(PatientCreate, await posted(request), PATIENT_FIELDS, language)
        if data is not None:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    patient = await service.register_patient(session, caller, data)
                return Redirect(f"/patients/{patient.id}?saved=1", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
        return _form_page(request, form, patient=None, status=422)

    @get("/{patient_id:uuid}")
    async def view(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
    ) -> Template:
        return await patient_page(request, session, caller, patient_id, FormState())

    @get("/{patient_id:uuid}/edit")
    async def edit_form(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
    ) -> Template:
        patient = await patient_access.get_patient(session, caller, patient_id)
        return _form_page(request, FormState(values=_form_values(patient)), patient=patient)

    @post("/{patient_id:uuid}/edit")
    async def update(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = await posted(request)
        # Fields left empty are cleared, except those a patient must always have.
        data, form = to_schema(PatientUpdate, values, PATIENT_FIELDS, language)
        if data is not None:
            clear_emptied(
                data,
                values,
                ("national_id", "insurance_number", "phone", "address", "admin_unit_code"),
            )
            try:
                async with audited_unit_of_work(db, caller) as session:
                    await service.update_patient(session, caller, patient_id, data)
                return Redirect(f"/patients/{patient_id}?saved=1", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
                if exc.status_code in (403, 404):
                    raise
        async with audited_unit_of_work(db, caller) as session:
            patient = await patient_access.get_patient(session, caller, patient_id)
        return _form_page(request, form, patient=patient, status=422)
