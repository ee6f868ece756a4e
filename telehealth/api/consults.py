"""/api routes of consults: requests and their actions, queues, booking, appointments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter

from telehealth.api.idempotency import IdempotentDep
from telehealth.availability.schemas import SlotRead
from telehealth.consults import attachments, booking, conclusion, queues, service
from telehealth.consults.models import ConsultStatus, Priority
from telehealth.consults.schemas import (
    ActionInput,
    AppointmentRead,
    AssignInput,
    AttachmentRead,
    BookingInput,
    ConclusionInput,
    ConclusionRead,
    ConsultCreate,
    ConsultRead,
    DeclineInput,
    RescheduleInput,
    TransitionRead,
)
from telehealth.directory.schemas import PatientRead
from telehealth.http.dependencies import CallerDep, SessionDep, SettingsDep

Limit = Annotated[int, QueryParameter(ge=1, le=200)]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]
Moment = Annotated[datetime | None, QueryParameter(description="ISO 8601 with offset")]
Reasoned = JSONBody[ActionInput]


class ConsultController(Controller):
    path = "/api/consults"
    tags = ["consults"]

    @post("/")
    async def create(
        self,
        data: JSONBody[ConsultCreate],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
        idempotent: IdempotentDep,
    ) -> Response[ConsultRead]:
        """Ask for a consult for a patient of your facility (submitted unless ``submit`` is
        false)."""

        async def create() -> ConsultRead:
            created = await service.create_request(session, caller, data, settings)
            return ConsultRead.model_validate(created)

        return await idempotent.answer(data, create)

    @get("/")
    async def queue(
        self,
        session: SessionDep,
        caller: CallerDep,
        status: FromQuery[ConsultStatus | None] = None,
        priority: FromQuery[Priority | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[ConsultRead]:
        """Your queue: most urgent first, then longest waiting."""
        rows = await queues.queue(
            session, caller, status=status, priority=priority, limit=limit, offset=offset
        )
        return [ConsultRead.model_validate(r) for r in rows]

    @get("/{request_id:uuid}")
    async def read(
        self, request_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> ConsultRead:
        return ConsultRead.model_validate(await service.get_request(session, caller, request_id))

    @get("/{request_id:uuid}/history")
    async def history(
        self, request_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> list[TransitionRead]:
        """Every action on the request: who, when, why."""
        rows = await service.request_history(session, caller, request_id)
        return [TransitionRead.model_validate(r) for r in rows]

    @get("/{request_id:uuid}/patient")
    async def patient(
        self, request_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> PatientRead:
        """The request's patient, for those the request is queued or assigned to."""
        return PatientRead.model_validate(
            await service.get_request_patient(session, caller, request_id)
        )

    @get("/{request_id:uuid}/slots")
    async def slots(
        self,
        request_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
        starts_after: Moment = None,
        starts_before: Moment = None,
        limit: Limit = 20,
    ) -> list[SlotRead]:
        """The earliest slots fitting the request (urgent: across all its specialists)."""
        rows = await booking.slots_for_request(
            session,
            caller,
            request_id,
            starts_after=starts_after,
            starts_before=starts_before,
            limit=limit,
        )
        return [SlotRead.model_validate(s) for s in rows]

    @get("/{request_id:uuid}/appointments")
    async def appointments(
        self, request_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> list[AppointmentRead]:
        rows = await booking.appointments_of_request(session, caller, request_id)
        return [AppointmentRead.model_validate(r) for r in rows]

    async def _act(
        self,
        request_id: uuid.UUID,
        action: str,
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
        data: ActionInput,
    ) -> ConsultRead:
        return ConsultRead.model_validate(
            await service.act_on_request(
                session, caller, request_id, action, settings, reason=data.reason
            )
        )

    @post("/{request_id:uuid}/submit", status_code=200)
    async def submit(
        self,
        request_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ConsultRead:
        """Send a draft to the specialists' queue."""
        return await self._act(request_id, "submit", session, caller, settings, data)

    @post("/{request_id:uuid}/resubmit", status_code=200)
    async def resubmit(
        self,
        request_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ConsultRead:
        """Send a request declined back to you to the queue again."""
        return await self._act(request_id, "resubmit", session, caller, settings, data)

    @post("/{request_id:uuid}/accept", status_code=200)
    async def accept(
        self,
        request_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ConsultRead:
        """A specialist of the service takes the request."""
        return await self._act(request_id, "accept", session, caller, settings, data)

    @post("/{request_id:uuid}/requeue", status_code=200)
    async def requeue(
        self,
        request_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ConsultRead:
        """A coordinator puts a declined request back in the queue."""
        return await self._act(request_id, "requeue", session, caller, settings, data)

    @post("/{request_id:uuid}/cancel", status_code=200)
    async def cancel(
        self,
        request_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ConsultRead:
        """Cancel the request (reason required); a booked appointment is cancelled with it."""
        return await self._act(request_id, "cancel", session, caller, settings, data)

    @post("/{request_id:uuid}/decline", status_code=200)
    async def decline(
        self,
        request_id: FromPath[uuid.UUID],
        data: JSONBody[DeclineInput],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ConsultRead:
        """Decline with a reason; the request returns to the queue or to the requester."""
        return ConsultRead.model_validate(
            await service.act_on_request(
                session,
                caller,
                request_id,
                "decline",
                settings,
                reason=data.reason,
                return_to=data.return_to,
            )
        )

    @post("/{request_id:uuid}/assign", status_code=200)
    async def assign(
        self,
        request_id: FromPath[uuid.UUID],
        data: JSONBody[AssignInput],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> ConsultRead:
        """A coordinator assigns the request to a specialist's service."""
        return ConsultRead.model_validate(
            await service.act_on_request(
                session,
                caller,
                request_id,
                "assign",
                settings,
                reason=data.reason,
                practitioner_role_id=data.practitioner_role_id,
            )
        )

    @post("/{request_id:uuid}/attachments")
    async def attach(
        self,
        request_id: FromPath[uuid.UUID],
        data: Annotated[UploadFile, Body(media_type=RequestEncodingType.MULTI_PART)],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
        idempotent: IdempotentDep,
    ) -> Response[AttachmentRead]:
        """Attach a photo (JPEG, PNG) or a PDF, as multipart form field ``data``; the type is
        read from the content, the size is limited (``TELEHEALTH_ATTACHMENT_MAX_BYTES``)."""
        content = await data.read(settings.attachment_max_bytes + 1)

        async def create() -> AttachmentRead:
            added = await attachments.attach(
                session, caller, request_id, data.filename, content, settings
            )
            return AttachmentRead.model_validate(added)

        # The upload is recognised by its name and bytes (a retry's multipart boundary differs).
        return await idempotent.answer(f"{data.filename}\n".encode() + content, create)

    @get("/{request_id:uuid}/attachments")
    async def list_attachments(
        self, request_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> list[AttachmentRead]:
        rows = await attachments.list_attachments(session, caller, request_id)
        return [AttachmentRead.model_validate(r) for r in rows]

    @get(
        "/{request_id:uuid}/attachments/{attachment_id:uuid}", media_type="application/octet-stream"
    )
    async def download(
        self,
        request_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """The file, always as a download, never rendered inline."""
        item, content = await attachments.read_attachment(
            session, caller, request_id, attachment_id, settings
        )
        return Response(
            content,
            media_type=item.media_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(item.filename)}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, no-store",
            },
        )


class AppointmentController(Controller):
    path = "/api/appointments"
    tags = ["consults"]

    @post("/")
    async def book(
        self,
        data: JSONBody[BookingInput],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
        idempotent: IdempotentDep,
    ) -> Response[AppointmentRead]:
        """Book a slot for an accepted request. 409 "slot no longer available" if someone
        else took it first; nothing is written then."""

        async def create() -> AppointmentRead:
            booked = await booking.book_slot(
                session, caller, data.request_id, data.slot_id, settings
            )
            return AppointmentRead.model_validate(booked)

        return await idempotent.answer(data, create)

    @get("/{appointment_id:uuid}")
    async def read(
        self, appointment_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> AppointmentRead:
        return AppointmentRead.model_validate(
            await booking.get_appointment(session, caller, appointment_id)
        )

    @post("/{appointment_id:uuid}/reschedule", status_code=200)
    async def reschedule(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: JSONBody[RescheduleInput],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> AppointmentRead:
        """Move to another slot atomically: the new one taken and the old freed, or nothing."""
        return AppointmentRead.model_validate(
            await booking.reschedule(
                session, caller, appointment_id, data.slot_id, data.reason, settings
            )
        )

    @post("/{appointment_id:uuid}/cancel", status_code=200)
    async def cancel(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
    ) -> AppointmentRead:
        """Cancel the booking (reason required); the request can be booked again."""
        return AppointmentRead.model_validate(
            await booking.cancel_appointment(session, caller, appointment_id, data.reason or "")
        )

    @post("/{appointment_id:uuid}/no-show", status_code=200)
    async def no_show(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
    ) -> AppointmentRead:
        return AppointmentRead.model_validate(
            await booking.mark_no_show(session, caller, appointment_id, data.reason or "")
        )

    @post("/{appointment_id:uuid}/start", status_code=200)
    async def start(
        self, appointment_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> AppointmentRead:
        return AppointmentRead.model_validate(
            await booking.start_consult(session, caller, appointment_id)
        )

    @post("/{appointment_id:uuid}/complete", status_code=200)
    async def complete(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: Reasoned,
        session: SessionDep,
        caller: CallerDep,
    ) -> AppointmentRead:
        return AppointmentRead.model_validate(
            await booking.complete_consult(session, caller, appointment_id, data.reason)
        )

    @post("/{appointment_id:uuid}/conclude", status_code=201)
    async def conclude(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: JSONBody[ConclusionInput],
        session: SessionDep,
        caller: CallerDep,
    ) -> ConclusionRead:
        """Complete the consult with its conclusion (the assigned specialist): ICD-10
        diagnoses, recommendation, advice. It becomes the FHIR Encounter and Conditions."""
        return await conclusion.conclude_consult(session, caller, appointment_id, data)

    @get("/{appointment_id:uuid}/conclusion")
    async def read_conclusion(
        self, appointment_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> ConclusionRead:
        return await conclusion.get_conclusion(session, caller, appointment_id)
