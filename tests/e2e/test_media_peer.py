"""The service's aiortc peer: pre-call echo and report, recording only with everyone's
consent, and a plain refusal past the configured capacity."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import av
import httpx
import pytest
from sqlmodel import col, select

from telehealth.consults.models import Appointment
from telehealth.db import Database
from telehealth.rtc.models import Recording, SessionEvent, SessionEventKind
from telehealth.settings import Settings
from tests.conftest import RunningServer
from tests.consult_support import consent_to
from tests.helpers import login
from tests.rtc_client import MediaLeg, SignallingClient
from tests.rtc_support import join_token, loopback_ice, make_room


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_ice(monkeypatch)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key="test-signing-key-" + "x" * 32,
        media_capacity=1,
    )


async def _connect(
    server: RunningServer,
    client: httpx.AsyncClient,
    room_id: uuid.UUID,
    username: str,
    precall: bool = False,
) -> tuple[SignallingClient, dict[str, object]]:
    token = await join_token(client, room_id, username)
    ws = server.url.replace("http", "ws", 1)
    signalling = SignallingClient(f"{ws}/ws/rooms/{room_id}", token, precall=precall)
    await signalling.connect()
    return signalling, await signalling.expect("welcome")


async def test_precall_echoes_media_reports_network_and_respects_capacity(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    a, welcome = await _connect(server, client, made.room_id, "bs.xa1", precall=True)
    assert welcome["precall"] is True
    b, welcome = await _connect(server, client, made.room_id, "bs.tim")
    # The pre-call connection did not join the room: nobody else is there, nothing is relayed.
    people = {p["id"]: p["connected"] for p in welcome["participants"]}  # type: ignore[attr-defined]
    assert people == {str(made.requester): False, str(made.specialist): True}
    await a.send({"type": "mute", "audio": True, "video": True})
    assert (await a.expect("error"))["reason"] == "precall_only"
    check = MediaLeg(a, [])
    answer = await check.start("precall_offer", "precall_answer")
    assert answer["type"] == "precall_answer", answer
    assert await check.wait_frames(30) >= 30  # our own camera, echoed back by the service

    # Capacity is one leg: the specialist's check is refused plainly, not degraded.
    second = MediaLeg(b, [])
    refused = await second.start("precall_offer", "precall_answer")
    assert refused["reason"] == "capacity" and "capacity" in str(refused["message"])
    await second.close()

    report: dict[str, object] = {}
    for _ in range(40):
        await a.send({"type": "precall_report"})
        report = await a.expect("precall_report")
        if report["rtt_ms"] is not None:
            break
        await check.wait_frames(check.frames + 5)
    assert isinstance(report["rtt_ms"], float) and report["rtt_ms"] >= 0
    assert isinstance(report["bitrate_kbps"], float) and report["bitrate_kbps"] > 0
    assert report["loss_pct"] == 0
    assert report["recommended_mode"] in ("video", "audio_only")
    await check.close()

    # Once the requester's connection ends, its leg is released for the specialist.
    await a.send({"type": "leave"})
    await a.closed()
    again = MediaLeg(b, [])
    assert (await again.start("precall_offer", "precall_answer"))["type"] == "precall_answer"
    await again.close()
    await b.close()
    async with db.unit_of_work() as session:
        kinds = (
            await session.exec(
                select(SessionEvent.kind).where(col(SessionEvent.room_id) == made.room_id)
            )
        ).all()
    assert SessionEventKind.PRECALL in kinds
    assert kinds.count(SessionEventKind.JOIN) == 1  # the specialist only


async def test_recording_only_with_everyones_consent(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    a, _ = await _connect(server, client, made.room_id, "bs.xa1")
    b, _ = await _connect(server, client, made.room_id, "bs.tim")

    await a.send({"type": "consent", "record": True})
    await a.expect("consent")
    refused = MediaLeg(a, [])
    reply = await refused.start("record_offer", "record_answer")
    assert reply["reason"] == "consent_missing", reply
    await refused.close()

    await b.send({"type": "consent", "record": True})
    assert (await a.expect("consent"))["from"] == str(made.specialist)
    leg = MediaLeg(a, [])
    assert (await leg.start("record_offer", "record_answer"))["type"] == "record_answer"
    async with db.unit_of_work() as session:
        row = (
            await session.exec(select(Recording).where(col(Recording.room_id) == made.room_id))
        ).one()
    assert await leg.wait_delivered(100) >= 100

    # The specialist withdraws consent: the recording stops at once.
    await b.send({"type": "consent", "record": False})
    await a.expect("consent")
    for _ in range(300):
        async with db.unit_of_work() as session:
            row = (
                await session.exec(select(Recording).where(col(Recording.room_id) == made.room_id))
            ).one()
        if row.stopped_at is not None:
            break
        await asyncio.sleep(0.1)
    recorded = settings.data_dir / row.path
    with av.open(str(recorded)) as container:
        kinds = [packet.stream.type for packet in container.demux() if packet.size]
    assert kinds.count("video") >= 30 and "audio" in kinds
    assert row.stopped_at is not None and row.size_bytes == recorded.stat().st_size
    await leg.close()
    await a.close()
    await b.close()
    async with db.unit_of_work() as session:
        kinds = (
            await session.exec(
                select(SessionEvent.kind).where(col(SessionEvent.room_id) == made.room_id)
            )
        ).all()
    assert kinds.count(SessionEventKind.RECORDING_START) == 1
    assert kinds.count(SessionEventKind.RECORDING_STOP) == 1


async def _recording_stopped(db: Database, room_id: uuid.UUID) -> Recording:
    for _ in range(300):
        async with db.unit_of_work() as session:
            row = (
                await session.exec(select(Recording).where(col(Recording.room_id) == room_id))
            ).one()
        if row.stopped_at is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("the recording did not stop")


async def test_recording_needs_the_patients_own_consent_and_stops_at_its_withdrawal(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    made = await make_room(db, settings)
    doctor = await login(client, "bs.xa1")
    async with db.unit_of_work() as session:
        appointment = await session.get(Appointment, made.appointment_id)
        assert appointment is not None
    patient = str(appointment.patient_id)
    consents = f"/api/patients/{patient}/consents"
    given = next(
        c
        for c in (await client.get(consents, headers=doctor)).json()
        if c["purpose"] == "session_recording" and c["active"]
    )
    withdrawn = await client.post(f"{consents}/{given['id']}/withdraw", json={}, headers=doctor)
    assert withdrawn.status_code == 200, withdrawn.text

    a, _ = await _connect(server, client, made.room_id, "bs.xa1")
    b, _ = await _connect(server, client, made.room_id, "bs.tim")
    await a.send({"type": "consent", "record": True})
    await a.expect("consent")
    await b.send({"type": "consent", "record": True})
    await a.expect("consent")
    # Both clinicians agree, the patient does not: nothing is recorded.
    refused = MediaLeg(a, [])
    reply = await refused.start("record_offer", "record_answer")
    assert reply["reason"] == "patient_consent_missing", reply
    assert "not enough" in str(reply["message"])
    await refused.close()

    anew = (await consent_to(client, doctor, patient, "session_recording"))[0]
    leg = MediaLeg(a, [])
    assert (await leg.start("record_offer", "record_answer"))["type"] == "record_answer"
    assert await leg.wait_delivered(50) >= 50
    # The patient withdraws while the session is recorded: it stops at once.
    stop = await client.post(f"{consents}/{anew['id']}/withdraw", json={}, headers=doctor)
    assert stop.status_code == 200, stop.text
    row = await _recording_stopped(db, made.room_id)
    assert row.size_bytes is not None and row.size_bytes > 0
    await leg.close()
    await a.close()
    await b.close()
