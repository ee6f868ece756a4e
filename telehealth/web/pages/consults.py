"""Consult requests: ask (with vital signs, ICD-10 and photos), follow, book, act, join.

Every handler calls the same service function as the matching /api route, with the same
Caller; the pages of everyone who sees a changed request are told by the unit of work's listeners
(``telehealth.reactions``), as they are after the same change through /api or /fhir.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from telehealth.auth.audit import audited_unit_of_work
from telehealth.auth.models import Role
from telehealth.consults import attachments, booking, conclusion, service
from telehealth.consults.models import ActivityType, ConsultStatus, Priority
from telehealth.consults.patient_access import get_patient
from telehealth.consults.rules import VITAL_RANGES
from telehealth.consults.schemas import ConsultCreate
from telehealth.directory import service as directory
from telehealth.directory.models import FacilityLevel
from telehealth.errors import InvalidInput, TelehealthError
from telehealth.http.dependencies import CallerDep, DatabaseDep, SessionDep, SettingsDep
from telehealth.terminology import icd10
from telehealth.web.forms import FormState, icd_codes, posted, refused, validate
from telehealth.web.i18n import translate
from telehealth.web.render import page, page_language

TEXT_FIELDS = (
    "patient_id",
    "activity_type",
    "specialty_code",
    "target_organization_id",
    "priority",
    "reason",
    "clinical_summary",
)
UPLOAD_FIELD = "files"


def _consult_data(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The schema's input from the form: text fields, ICD-10 codes, vital signs."""
    data: dict[str, Any] = {name: values[name] for name in TEXT_FIELDS if values.get(name)}
    data["diagnoses"] = icd_codes(values.get("diagnoses", ""))
    vitals: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in VITAL_RANGES:
        raw = values.get(f"vs_{name}", "").replace(",", ".")
        if raw:
            try:
                vitals[name] = float(raw)
            except ValueError:
                errors[f"vs_{name}"] = "is not a number"
    data["vital_signs"] = vitals
    return data, errors


def _files(form: Any) -> list[UploadFile]:
    return [f for f in form.getall(UPLOAD_FIELD, []) if isinstance(f, UploadFile) and f.filename]


class ConsultPages(Controller):
    path = "/consults"
    include_in_schema = False

    async def _form(
        self,
        request: Request[Any, Any, Any],
        session: Any,
        caller: Any,
        form: FormState,
        status: int = 200,
    ) -> Template:
        patients, _ = await directory.search_patients(session, caller, limit=100)
        hospitals, _ = await directory.search_organizations(
            session, caller, level=FacilityLevel.PROVINCIAL, limit=100
        )
        return page(
            request,
            "consults/form.html",
            status_code=status,
            form=form,
            patients=[(str(p.id), p.full_name) for p in patients],
            specialties=[
                (s.code, s.name_vi if page_language(request) == "vi" else s.name_en)
                for s in await directory.list_specialties(session)
            ],
            hospitals=[(str(h.id), h.name) for h in hospitals],
            activity_types=list(ActivityType),
            priorities=list(Priority),
            vitals=VITAL_RANGES,
        )

    @get("/new")
    async def new_form(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        caller: CallerDep,
        patient_id: Annotated[str, QueryParameter(max_length=40)] = "",
    ) -> Template:
        values = {"patient_id": patient_id, "priority": "routine", "activity_type": "tele_advice"}
        return await self._form(request, session, caller, FormState(values=values))

    @post("/new")
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        language = page_language(request)
        values = await posted(request)
        uploads = _files(await request.form())
        data, errors = _consult_data(values)
        consult, form = validate(ConsultCreate, data, values, language)
        for name, text in errors.items():
            form.errors.setdefault(name, translate(language, text))
        if consult is not None and not errors:
            try:
                async with audited_unit_of_work(db, caller) as session:
                    created = await service.create_request(session, caller, consult, settings)
                    for upload in uploads:
                        content = await upload.read(settings.attachment_max_bytes + 1)
                        try:
                            await attachments.attach(
                                session, caller, created.id, upload.filename, content, settings
                            )
                        except InvalidInput as exc:
                            raise InvalidInput.for_field(UPLOAD_FIELD, exc.detail) from exc
                return Redirect(f"/consults/{created.id}?saved=1", status_code=303)
            except TelehealthError as exc:
                refused(form, exc, language)
                if exc.status_code in (403, 404) and not exc.problems:
                    raise
        for name in list(form.errors):  # the service names nested fields: vital_signs.spo2
            base, _, rest = name.replace("[", ".").partition(".")
            if rest:
                target = f"vs_{rest}" if base == "vital_signs" else base
                form.errors.setdefault(target, form.errors.pop(name))
        async with db.unit_of_work() as session:
            return await self._form(request, session, caller, form, status=422)

    @get("/icd10")
    async def icd10_search(
        self, q: Annotated[str, QueryParameter(min_length=1, max_length=80)]
    ) -> list[dict[str, str]]:
        """Suggestions for the diagnosis picker: code or words of the title."""
        return [{"code": c.code, "display": c.display} for c in icd10.search(q, 15)]

    @get("/{request_id:uuid}")
    async def view(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
    ) -> Template:
        return await self._view(request, request_id, session, caller)

    async def _view(
        self,
        request: Request[Any, Any, Any],
        request_id: uuid.UUID,
        session: Any,
        caller: Any,
        form: FormState | None = None,
        status: int = 200,
    ) -> Template:
        consult = await service.get_request(session, caller, request_id)
        history = await service.request_history(session, caller, request_id)
        files = await attachments.list_attachments(session, caller, request_id)
        appointments = await booking.appointments_of_request(session, caller, request_id)
        role = caller.principal.role
        slots: list[Any] = []
        if consult.status == ConsultStatus.SCHEDULED or (
            consult.status == ConsultStatus.ACCEPTED and role != Role.SPECIALIST
        ):
            slots = list(await booking.slots_for_request(session, caller, request_id, limit=8))
        patient = (
            await get_patient(session, caller, consult.patient_id)
            if role == Role.REQUESTER
            else await service.get_request_patient(session, caller, request_id)
        )
        services: list[tuple[str, str]] = []
        if role == Role.COORDINATOR and consult.status in (
            ConsultStatus.REQUESTED,
            ConsultStatus.ACCEPTED,
        ):
            services = await _assignable(session, caller, consult)
        active = next((a for a in appointments if a.status in ("booked", "in_progress")), None)
        conclusions = (
            await conclusion.conclusions_of_request(session, caller, request_id)
            if consult.status == ConsultStatus.COMPLETED
            else []
        )
        return page(
            request,
            "consults/view.html",
            status_code=status,
            consult=consult,
            patient=patient,
            history=history,
            files=files,
            appointments=appointments,
            active=active,
            conclusions=conclusions,
            slots=slots,
            services=services,
            form=form or FormState(),
            Role=Role,
            vitals=VITAL_RANGES,
            saved=bool(request.query_params.get("saved")),
        )

    @post("/{request_id:uuid}/act/{action:str}")
    async def act(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[uuid.UUID],
        action: FromPath[str],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        """accept, decline (with a reason), cancel, submit, resubmit, requeue, assign."""
        values = await posted(request)
        reason = values.get("reason") or None
        extra: dict[str, Any] = {}
        if action == "decline":
            extra["return_to"] = values.get("return_to") or "queue"
        try:
            if action == "assign":
                try:
                    extra["practitioner_role_id"] = uuid.UUID(
                        values.get("practitioner_role_id", "")
                    )
                except ValueError:
                    raise InvalidInput.for_field(
                        "practitioner_role_id", "choose one of the options"
                    ) from None
            if action in ("decline", "cancel") and not reason:
                raise InvalidInput.for_field("reason", "is required")
            async with audited_unit_of_work(db, caller) as session:
                await service.act_on_request(
                    session, caller, request_id, action, settings, reason=reason, **extra
                )
        except TelehealthError as exc:
            if exc.status_code in (403, 404):
                raise
            form = refused(FormState(values=values), exc, page_language(request))
            async with db.unit_of_work() as session:
                return await self._view(request, request_id, session, caller, form, 422)
        return Redirect(f"/consults/{request_id}?saved=1", status_code=303)

    @post("/{request_id:uuid}/book")
    async def book(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[uuid.UUID],
        db: DatabaseDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        values = await posted(request)
        try:
            slot_id = uuid.UUID(values.get("slot_id", ""))
            async with audited_unit_of_work(db, caller) as session:
                await booking.book_slot(session, caller, request_id, slot_id, settings)
        except ValueError:
            form = FormState(values=values, message="choose one of the options")
            async with db.unit_of_work() as session:
                return await self._view(request, request_id, session, caller, form, 422)
        except TelehealthError as exc:
            if exc.status_code in (403, 404):
                raise
            form = refused(FormState(values=values), exc, page_language(request))
            async with db.unit_of_work() as session:
                return await self._view(request, request_id, session, caller, form, 409)
        return Redirect(f"/consults/{request_id}?saved=1", status_code=303)


async def _assignable(session: Any, caller: Any, consult: Any) -> list[tuple[str, str]]:
    """The coordinator's hospital's services in the request's specialty, by specialist name."""
    roles = await directory.practitioner_roles(
        session, caller, organization_id=caller.principal.organization_id
    )
    found = []
    for role in roles:
        if role.specialty_id == consult.specialty_id and role.active:
            person = await directory.get_practitioner(session, caller, role.practitioner_id)
            found.append((str(role.id), person.full_name))
    return sorted(found, key=lambda item: item[1])
