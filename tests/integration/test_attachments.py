"""Attachments: type from content, size limit, private storage, downloads only for the allowed."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import select

from telehealth.auth.models import AuditEvent
from telehealth.consults.models import ConsultAttachment
from telehealth.db import Database
from telehealth.settings import Settings
from tests.consult_support import new_request, own_patients
from tests.helpers import assert_problem, login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def test_photo_and_pdf_are_kept_privately_and_served_as_downloads(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    request = await new_request(client, doctor, (await own_patients(client, doctor))[0])
    url = f"/api/consults/{request['id']}/attachments"
    photo = await client.post(
        url, files={"data": ("../../etc/ecg<script>.png", PNG, "text/html")}, headers=doctor
    )
    assert photo.status_code == 201, photo.text
    assert photo.json()["media_type"] == "image/png"
    assert photo.json()["filename"] == "ecgscript.png"
    document = await client.post(
        url, files={"data": ("kết quả.pdf", PDF, "application/pdf")}, headers=doctor
    )
    assert document.status_code == 201, document.text

    listed = await client.get(url, headers=cardio)
    assert [a["media_type"] for a in listed.json()] == ["image/png", "application/pdf"]
    download = await client.get(f"{url}/{photo.json()['id']}", headers=cardio)
    assert download.status_code == 200
    assert download.content == PNG
    assert download.headers["content-type"].startswith("image/png")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers["content-security-policy"]

    async with db.unit_of_work() as session:
        stored = await session.get(ConsultAttachment, uuid.UUID(photo.json()["id"]))
        reads = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.entity_type == "ConsultAttachment",
                    AuditEvent.entity_id == photo.json()["id"],
                )
            )
        ).all()
    assert stored is not None
    files = list((settings.data_dir / "attachments").rglob("*"))
    on_disk = [f for f in files if f.is_file()]
    assert len(on_disk) == 2 and stored.storage_key in [f.name for f in on_disk]
    assert all("ecg" not in f.name and (f.stat().st_mode & 0o077) == 0 for f in on_disk)
    assert {e.action for e in reads} >= {"create", "read"}


async def test_bad_files_are_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    doctor = await login(client, "bs.xa1")
    request = await new_request(client, doctor, (await own_patients(client, doctor))[0])
    url = f"/api/consults/{request['id']}/attachments"
    for name, content in (
        ("xray.png", b"<html><script>alert(1)</script></html>"),
        ("run.pdf", b"MZ\x90\x00" + bytes(100)),
        ("empty.jpg", b""),
        ("huge.jpg", b"\xff\xd8\xff" + bytes(8 * 1024 * 1024)),
    ):
        refused = await client.post(
            url, files={"data": (name, content, "image/png")}, headers=doctor
        )
        assert_problem(refused, 422, field="file")
    async with db.unit_of_work() as session:
        assert (await session.exec(select(ConsultAttachment))).all() == []
    assert not [f for f in (settings.data_dir / "attachments").rglob("*") if f.is_file()]


async def test_only_those_who_may_read_the_request_get_its_files(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    request = await new_request(client, doctor, (await own_patients(client, doctor))[0])
    url = f"/api/consults/{request['id']}/attachments"
    created = (
        await client.post(url, files={"data": ("a.pdf", PDF, "application/pdf")}, headers=doctor)
    ).json()
    for outsider in ("bs.xa2", "bs.da", "quantri"):
        headers = await login(client, outsider)
        assert_problem(await client.get(f"{url}/{created['id']}", headers=headers), 404)
        assert_problem(await client.get(url, headers=headers), 404)
        refused = await client.post(
            url, files={"data": ("b.pdf", PDF, "application/pdf")}, headers=headers
        )
        assert refused.status_code in (403, 404)
    assert_problem(await client.get(f"{url}/{uuid.uuid4()}", headers=doctor), 404)
