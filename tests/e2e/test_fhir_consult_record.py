"""A consult taken from request to conclusion through /api, with a real video session, read
back at /fhir as one coherent, versioned record (and by fhirpy, a third-party client)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import AsyncFHIRClient
from sqlmodel import col, select

from telehealth.auth.models import AuditEvent
from telehealth.db import Database
from telehealth.fhir.models import FhirResourceVersion
from telehealth.rtc.models import ParticipantRole, Recording
from telehealth.rtc.presence import session_times
from telehealth.rtc.service import ParticipantSpec, open_room_for
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.conftest import RunningServer
from tests.consult_support import accepted_request, me, own_patients, service_of
from tests.e2e.fhir_support import WRITER_ID, WRITER_SECRET, add_writer_client, client_headers
from tests.e2e.fhir_support import fhir_json as fhir_body
from tests.helpers import login
from tests.rtc_client import SignallingClient
from tests.rtc_support import join_token, user_id

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MKV = b"\x1a\x45\xdf\xa3" + b"\x42\x86\x81\x01" * 64  # an EBML header, then filler
ICD10 = "http://hl7.org/fhir/sid/icd-10"


async def soon_slot(client: httpx.AsyncClient, cardio: dict[str, str], role_id: str) -> None:
    """Extra hours starting in ten minutes, so that the room's window is already open."""
    start = (utcnow() + timedelta(minutes=10)).replace(second=0, microsecond=0)
    extra = await client.post(
        "/api/availability/exceptions",
        json={
            "practitioner_role_id": role_id,
            "kind": "extra",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=40)).isoformat(),
            "slot_minutes": 20,
        },
        headers=cardio,
    )
    assert extra.status_code == 201, extra.text


async def video_session(
    server: RunningServer,
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    appointment: dict[str, Any],
) -> uuid.UUID:
    """The room as booking makes it; both doctors join over WebSocket, then leave."""
    async with db.unit_of_work() as session:
        room = await open_room_for(
            session,
            uuid.UUID(appointment["id"]),
            [
                ParticipantSpec(await user_id(db, "bs.xa1"), ParticipantRole.REQUESTER),
                ParticipantSpec(await user_id(db, "bs.tim"), ParticipantRole.SPECIALIST),
            ],
            datetime.fromisoformat(appointment["starts_at"]),
            datetime.fromisoformat(appointment["ends_at"]),
            settings=settings,
        )
    base = server.url.replace("http", "ws", 1)
    peers = []
    for username in ("bs.xa1", "bs.tim"):
        token = await join_token(client, room.id, username)
        peer = SignallingClient(f"{base}/ws/rooms/{room.id}", token)
        await peer.connect()
        await peer.expect("welcome")
        peers.append(peer)
    await peers[0].expect("peer_joined")
    await peers[1].close()
    await peers[0].expect("peer_left")
    await peers[0].close()
    async with asyncio.timeout(20):  # the server records the last leave once it sees the close
        while True:
            async with db.unit_of_work() as session:
                times = await session_times(session, room.appointment_id)
            if times is not None and times.ended_at is not None:
                return room.id
            await asyncio.sleep(0.05)


async def history_of(
    client: httpx.AsyncClient, headers: dict[str, str], reference: str
) -> list[dict[str, Any]]:
    bundle = fhir_body(await client.get(f"/fhir/{reference}/_history", headers=headers))
    assert bundle["type"] == "history"
    return [entry["resource"] for entry in reversed(bundle["entry"])]  # oldest first


def statuses(versions: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for version in versions:
        if not seen or seen[-1] != version["status"]:
            seen.append(version["status"])
    return seen


async def test_a_concluded_consult_is_a_coherent_versioned_fhir_record(
    server: RunningServer, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await soon_slot(client, cardio, role["id"])
    patient = (await own_patients(client, doctor))[0]
    request = await accepted_request(client, doctor, cardio, patient)
    attached = await client.post(
        f"/api/consults/{request['id']}/attachments",
        files={"data": ("ecg.png", PNG, "image/png")},
        headers=doctor,
    )
    assert attached.status_code == 201, attached.text
    offered = (await client.get(f"/api/consults/{request['id']}/slots", headers=doctor)).json()
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": offered[0]["id"]},
        headers=doctor,
    )
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    started = await client.post(f"/api/appointments/{appointment['id']}/start", headers=cardio)
    assert started.status_code == 200, started.text
    room_id = await video_session(server, client, db, settings, appointment)
    await add_writer_client(db)
    hit = await client_headers(client, WRITER_ID, WRITER_SECRET)
    during = await history_of(client, hit, f"Encounter/{room_id}")
    assert [v["status"] for v in during] == ["in-progress", "finished"], during
    assert "end" not in during[0]["period"], "the first arrival starts the Encounter"
    assert during[1]["period"]["start"] == during[0]["period"]["start"]
    assert during[1]["period"]["end"] >= during[1]["period"]["start"], "the last leave ends it"
    assert "diagnosis" not in during[1] and "hospitalization" not in during[1]
    # What the media peer leaves once a consented recording stops: the file and its row.
    recorded_file = settings.data_dir / "recordings" / str(room_id) / "tim.mkv"
    recorded_file.parent.mkdir(parents=True)
    recorded_file.write_bytes(MKV)
    async with db.unit_of_work() as session:
        recording = Recording(
            room_id=room_id,
            user_id=await user_id(db, "bs.tim"),
            path=str(recorded_file.relative_to(settings.data_dir)),
            stopped_at=utcnow(),
            size_bytes=len(MKV),
        )
        session.add(recording)
    concluded = await client.post(
        f"/api/appointments/{appointment['id']}/conclude",
        json={
            "diagnoses": ["I20.0", "i10"],
            "recommendation": "treat_locally",
            "advice": "Tiếp tục điều trị tại trạm; tái khám sau 2 tuần.",
        },
        headers=cardio,
    )
    assert concluded.status_code == 201, concluded.text
    conclusion = concluded.json()
    assert conclusion["session_started_at"] and conclusion["session_ended_at"]
    specialist = (await me(client, cardio))["practitioner_id"]

    service_request = fhir_body(
        await client.get(f"/fhir/ServiceRequest/{request['id']}", headers=hit)
    )
    assert service_request["status"] == "completed"
    assert service_request["category"][0]["coding"][0]["code"] == "11429006"
    assert service_request["code"]["coding"][0]["code"] == "exam_treatment"
    assert service_request["subject"]["reference"] == f"Patient/{patient}"
    assert [c["coding"][0]["code"] for c in service_request["reasonCode"]] == ["I20.0", "I10"]
    assert {c["coding"][0]["system"] for c in service_request["reasonCode"]} == {ICD10}
    supporting = {s["reference"] for s in service_request["supportingInfo"]}
    attachment_ref = f"DocumentReference/{attached.json()['id']}"
    assert supporting == {f"Observation/{request['id']}", attachment_ref}

    vitals = fhir_body(await client.get(f"/fhir/Observation/{request['id']}", headers=hit))
    assert {c["code"]["coding"][0]["code"] for c in vitals["component"]} == {
        "8867-4",
        "8480-6",
        "8462-4",
        "59408-5",
    }

    task = await history_of(client, hit, f"Task/{request['id']}")
    assert statuses(task)[-3:] == ["accepted", "in-progress", "completed"]
    assert task[-1]["owner"]["reference"] == f"Practitioner/{specialist}"
    assert task[-1]["businessStatus"]["coding"][0]["code"] == "completed"

    versions = await history_of(client, hit, f"Appointment/{appointment['id']}")
    assert statuses(versions) == ["booked", "arrived", "fulfilled"]
    current = versions[-1]
    assert current["slot"] == [{"reference": f"Slot/{offered[0]['id']}"}]
    assert current["basedOn"] == [{"reference": f"ServiceRequest/{request['id']}"}]
    actors = {p["actor"]["reference"] for p in current["participant"]}
    assert {f"Patient/{patient}", f"Practitioner/{specialist}"} <= actors
    virtual = {e["url"]: e for e in current["extension"][0]["extension"]}
    assert virtual["sessionKey"]["valueString"] == str(room_id)

    slot = fhir_body(await client.get(f"/fhir/Slot/{offered[0]['id']}", headers=hit))
    assert slot["status"] == "busy" and slot["schedule"]["reference"] == f"Schedule/{role['id']}"

    encounter = fhir_body(await client.get(f"/fhir/Encounter/{room_id}", headers=hit))
    assert encounter["class"]["code"] == "VR" and encounter["status"] == "finished"
    assert encounter["period"] == during[1]["period"], "the conclusion keeps the real period"
    assert encounter["meta"]["versionId"] == "3", "joined, left, concluded: three versions"
    assert encounter["appointment"] == [{"reference": f"Appointment/{appointment['id']}"}]
    assert encounter["basedOn"] == [{"reference": f"ServiceRequest/{request['id']}"}]
    outcome = encounter["hospitalization"]["dischargeDisposition"]["coding"][0]
    assert outcome["code"] == "treat_locally"

    conditions = fhir_body(
        await client.get(
            "/fhir/Condition", params={"encounter": f"Encounter/{encounter['id']}"}, headers=hit
        )
    )
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in conditions["entry"]}
    assert codes == {"I20.0", "I10"}
    diagnosed = {d["condition"]["reference"] for d in encounter["diagnosis"]}
    assert diagnosed == {f"Condition/{e['resource']['id']}" for e in conditions["entry"]}

    documents = fhir_body(
        await client.get(
            "/fhir/DocumentReference",
            params={"encounter": f"Encounter/{encounter['id']}"},
            headers=hit,
        )
    )
    by_id = {e["resource"]["id"]: e["resource"] for e in documents["entry"]}
    assert set(by_id) == {attached.json()["id"], conclusion["id"], str(recording.id)}
    recorded = by_id[str(recording.id)]
    assert recorded["content"][0]["attachment"]["contentType"] == "video/x-matroska"
    assert recorded["subject"]["reference"] == f"Patient/{patient}"
    binary_url = by_id[attached.json()["id"]]["content"][0]["attachment"]["url"]
    as_fhir = {**doctor, "Accept": "application/fhir+json"}
    binary = fhir_body(await client.get(f"/fhir/{binary_url}", headers=as_fhir))
    assert binary["contentType"] == "image/png" and base64.b64decode(binary["data"]) == PNG
    native = await client.get(f"/fhir/{binary_url}", headers=doctor)
    assert native.status_code == 200 and native.content == PNG
    assert native.headers["content-type"] == "image/png"
    assert native.headers["content-disposition"].startswith("attachment")
    assert (await client.get(f"/fhir/{binary_url}", headers=hit)).content == PNG
    stranger_headers = await login(client, "bs.xa2")
    stranger = await client.get(f"/fhir/{binary_url}", headers=stranger_headers)
    assert stranger.status_code == 404
    video_url = recorded["content"][0]["attachment"]["url"]
    assert video_url == f"Binary/{recording.id}"
    video = await client.get(f"/fhir/{video_url}", headers=doctor)
    assert video.status_code == 200, video.text
    assert video.content == MKV and video.headers["content-type"] == "video/x-matroska"
    video_json = fhir_body(await client.get(f"/fhir/{video_url}?_format=json", headers=hit))
    assert base64.b64decode(video_json["data"]) == MKV
    assert (await client.get(f"/fhir/{video_url}", headers=stranger_headers)).status_code == 404
    unscoped = await client.get(
        f"/fhir/{video_url}",
        headers=await client_headers(client),
    )
    assert unscoped.status_code == 403, "a client needs system/Binary.r"
    note = by_id[conclusion["id"]]["content"][0]["attachment"]
    assert "tái khám sau 2 tuần" in base64.b64decode(note["data"]).decode()

    admin = await login(client, "quantri")
    audit = fhir_body(
        await client.get(
            "/fhir/AuditEvent", params={"patient": patient, "_count": "200"}, headers=admin
        )
    )
    audited = {e["resource"]["entity"][0]["what"].get("display", "") for e in audit["entry"]}
    assert audit["entry"] and audited, "reads and writes of this patient's consult are audited"
    async with db.unit_of_work() as session:
        binary_reads = (
            await session.exec(
                select(AuditEvent.outcome).where(
                    col(AuditEvent.entity_type) == "Binary",
                    col(AuditEvent.entity_id) == str(recording.id),
                )
            )
        ).all()
    assert sorted(binary_reads) == ["denied", "success", "success"], binary_reads

    for reference in (
        f"Patient/{patient}",
        f"ServiceRequest/{request['id']}",
        f"Encounter/{room_id}",
        f"Condition/{conditions['entry'][0]['resource']['id']}",
        f"DocumentReference/{conclusion['id']}",
        f"Task/{request['id']}",
        f"Appointment/{appointment['id']}",
        attachment_ref,
    ):
        assert await history_of(client, hit, reference)

    fhir = AsyncFHIRClient(f"{server.url}/fhir", authorization=hit["Authorization"])
    found = await fhir.resources("Encounter").search(patient=f"Patient/{patient}").fetch_all()
    assert [e["id"] for e in found] == [str(room_id)]
    appointments = (
        await fhir.resources("Appointment")
        .search(patient=f"Patient/{patient}", status="fulfilled")
        .fetch_all()
    )
    assert [a["id"] for a in appointments] == [appointment["id"]]
    tasks = await fhir.resources("Task").search(owner=f"Practitioner/{specialist}").fetch_all()
    assert request["id"] in [t["id"] for t in tasks]

    async with db.unit_of_work() as session:
        stored = (await session.exec(select(FhirResourceVersion))).all()
    emitted = {v.resource_type for v in stored}
    assert {"ServiceRequest", "Task", "Appointment", "Encounter", "Condition"} <= emitted
    for version in stored:  # every version of the record validates as R4B
        get_fhir_model_class(version.resource_type).model_validate(json.loads(version.text))
