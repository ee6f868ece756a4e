"""Shared by the video-session tests: a room for a demo consult, join tokens, loopback ICE."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import Role, UserAccount
from telehealth.availability.models import Slot, SlotStatus
from telehealth.consults.models import (
    ActivityType,
    Appointment,
    ConsultRequest,
    ConsultStatus,
    Priority,
)
from telehealth.db import Database
from telehealth.directory.models import Patient, Practitioner, PractitionerRole
from telehealth.rtc.models import ParticipantRole
from telehealth.rtc.service import ParticipantSpec, open_room_for
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.helpers import login


def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice skips loopback when listing host addresses; on this test machine we want it."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def user_id(db: Database, username: str) -> uuid.UUID:
    async with db.unit_of_work() as session:
        account = (
            await session.exec(select(UserAccount).where(col(UserAccount.username) == username))
        ).one()
        return account.id


@dataclass
class ConsultRoom:
    room_id: uuid.UUID
    appointment_id: uuid.UUID
    requester: uuid.UUID
    specialist: uuid.UUID


async def _appointment_row(
    session: AsyncSession, requester: uuid.UUID, starts: datetime, ends: datetime
) -> uuid.UUID:
    """A booked appointment for the room to belong to (``room.appointment_id`` is a foreign
    key), with a specialist of its own so that several rooms at one time never overlap."""
    account = await session.get(UserAccount, requester)
    assert account is not None
    tim = (await session.exec(select(UserAccount).where(UserAccount.username == "bs.tim"))).one()
    role = (
        await session.exec(
            select(PractitionerRole).where(PractitionerRole.practitioner_id == tim.practitioner_id)
        )
    ).first()
    patient = (
        await session.exec(
            select(Patient).where(Patient.organization_id == account.organization_id)
        )
    ).first()
    assert role is not None and role.specialty_id and patient
    visitor = Practitioner(full_name="BS khách", name_folded="bs khach")
    service = PractitionerRole(
        practitioner_id=visitor.id,
        organization_id=role.organization_id,
        specialty_id=role.specialty_id,
    )
    slot = Slot(
        practitioner_role_id=service.id,
        practitioner_id=visitor.id,
        organization_id=role.organization_id,
        specialty_id=role.specialty_id,
        starts_at=starts,
        ends_at=ends,
        status=SlotStatus.BOOKED,
    )
    request = ConsultRequest(
        patient_id=patient.id,
        requesting_organization_id=patient.organization_id,
        requester_id=requester,
        activity_type=ActivityType.EXAM_TREATMENT,
        specialty_id=role.specialty_id,
        target_organization_id=role.organization_id,
        priority=Priority.ROUTINE,
        priority_rank=2,
        reason="room test",
        clinical_summary="room test",
        status=ConsultStatus.SCHEDULED,
    )
    appointment = Appointment(
        request_id=request.id,
        slot_id=slot.id,
        patient_id=patient.id,
        practitioner_id=visitor.id,
        practitioner_role_id=service.id,
        starts_at=starts,
        ends_at=ends,
    )
    for row in (visitor, service, slot, request, appointment):
        session.add(row)
        await session.flush()
    return appointment.id


async def make_room(
    db: Database, settings: Settings, *, starts_in: timedelta = timedelta(minutes=5)
) -> ConsultRoom:
    """A room for bs.xa1 (requester) and bs.tim (specialist), as booking will create it."""
    requester, specialist = await user_id(db, "bs.xa1"), await user_id(db, "bs.tim")
    starts = utcnow() + starts_in
    async with db.unit_of_work() as session:
        appointment_id = await _appointment_row(
            session, requester, starts, starts + timedelta(minutes=30)
        )
        room = await open_room_for(
            session,
            appointment_id,
            [
                ParticipantSpec(requester, ParticipantRole.REQUESTER),
                ParticipantSpec(specialist, ParticipantRole.SPECIALIST),
            ],
            starts,
            starts + timedelta(minutes=30),
            settings=settings,
        )
    return ConsultRoom(room.id, appointment_id, requester, specialist)


async def account_like(db: Database, username: str, role: Role, like: str) -> uuid.UUID:
    """A new account with ``role`` at the facility (and with the password) of ``like``."""
    async with db.unit_of_work() as session:
        model = (
            await session.exec(select(UserAccount).where(col(UserAccount.username) == like))
        ).one()
        account = UserAccount(
            username=username,
            password_hash=model.password_hash,
            display_name=username,
            role=role,
            organization_id=model.organization_id,
        )
        session.add(account)
        await session.flush()
        return account.id


async def join_token(client: httpx.AsyncClient, room_id: uuid.UUID, username: str) -> str:
    response = await client.post(
        f"/api/rooms/{room_id}/join", headers=await login(client, username)
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token
