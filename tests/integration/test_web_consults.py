"""Consult pages over HTTP: a rejected request form keeps what was typed and writes nothing;
pages refuse what the API refuses; files are checked; the ICD-10 picker answers."""

from __future__ import annotations

import httpx

from tests.integration.test_web_session import csrf_token, page_login

CARDIOLOGY = "394579002"


async def first_patient(client: httpx.AsyncClient) -> str:
    page = await client.get("/consults/new")
    assert page.status_code == 200
    found = page.text.split('<select id="f-patient_id"')[1].split('<option value="')[2]
    return found.split('"')[0]


def form(token: str, patient_id: str, **extra: str) -> dict[str, str]:
    return {
        "_csrf_token": token,
        "patient_id": patient_id,
        "activity_type": "tele_advice",
        "specialty_code": CARDIOLOGY,
        "priority": "urgent",
        "reason": "Đau ngực",
        "clinical_summary": "Đau ngực trái 2 giờ",
        **extra,
    }


async def my_requests(client: httpx.AsyncClient) -> int:
    return (await client.get("/queue")).text.count('href="/consults/')


async def test_rejected_form_keeps_the_input_and_writes_nothing(client: httpx.AsyncClient) -> None:
    await page_login(client, "bs.xa1")
    patient = await first_patient(client)
    token = await csrf_token(client, "/consults/new")
    before = await my_requests(client)
    for bad, field, message in (
        ({"vs_heart_rate": "nhanh"}, "vs_heart_rate", "không phải là số"),
        ({"vs_heart_rate": "400"}, "vs_heart_rate", "400"),
        ({"diagnoses": "Z99.99X"}, "diagnoses", "Z99.99X"),
        ({"clinical_summary": ""}, "clinical_summary", "Bắt buộc"),
    ):
        response = await client.post("/consults/new", data=form(token, patient, **bad))
        assert response.status_code == 422, bad
        slot = response.text.split(f'id="e-{field}"')[1].split("</small>")[0]
        assert message.lower() in slot.lower(), (bad, slot)
        assert "Đau ngực trái 2 giờ" in response.text or field == "clinical_summary"
    assert await my_requests(client) == before


async def test_a_file_that_is_not_a_photo_or_pdf_is_refused(client: httpx.AsyncClient) -> None:
    await page_login(client, "bs.xa1")
    patient = await first_patient(client)
    token = await csrf_token(client, "/consults/new")
    before = await my_requests(client)
    response = await client.post(
        "/consults/new",
        data=form(token, patient),
        files={"files": ("ecg.png", b"MZ\x90\x00 not an image", "image/png")},
    )
    assert response.status_code == 422
    assert 'id="e-files"' in response.text
    assert response.text.split('id="e-files"')[1].split("</small>")[0].strip(" >")
    assert await my_requests(client) == before


async def test_pages_refuse_what_the_api_refuses(client: httpx.AsyncClient) -> None:
    await page_login(client, "bs.xa1")
    patient = await first_patient(client)
    token = await csrf_token(client, "/consults/new")
    created = await client.post("/consults/new", data=form(token, patient))
    assert created.status_code == 303
    url = created.headers["location"].split("?")[0]
    assert (await client.get(url)).status_code == 200

    # A requester may not publish hours nor accept; a specialist may not request.
    assert (await client.get("/availability")).status_code == 403
    token = await csrf_token(client, url)
    accept = await client.post(f"{url}/act/accept", data={"_csrf_token": token})
    assert accept.status_code == 403

    client.cookies.clear()
    await page_login(client, "bs.xa2")
    assert (await client.get(url)).status_code == 404
    token = await csrf_token(client, "/")
    cancel = await client.post(f"{url}/act/cancel", data={"_csrf_token": token, "reason": "x"})
    assert cancel.status_code == 404

    client.cookies.clear()
    await page_login(client, "bs.tim")
    token = await csrf_token(client, "/queue")
    refused = await client.post("/consults/new", data=form(token, patient))
    assert refused.status_code in (403, 422)
    decline = await client.post(f"{url}/act/decline", data={"_csrf_token": token})
    assert decline.status_code == 422  # a reason is required
    assert "Bắt buộc" in decline.text or "bắt buộc" in decline.text


async def test_icd10_picker_finds_by_code_and_by_words(client: httpx.AsyncClient) -> None:
    await page_login(client, "bs.xa1")
    by_code = (await client.get("/consults/icd10", params={"q": "I21.0"})).json()
    assert by_code[0]["code"] == "I21.0"
    by_words = (await client.get("/consults/icd10", params={"q": "myocardial infarction"})).json()
    assert any(row["code"].startswith("I21") for row in by_words)
    assert (await client.get("/consults/icd10", params={"q": ""})).status_code == 400


async def test_only_the_owner_removes_an_exception_from_the_week_view(
    client: httpx.AsyncClient,
) -> None:
    await page_login(client, "bs.tim")
    token = await csrf_token(client, "/availability")
    page = (await client.get("/availability")).text
    role_id = page.split('id="f-x-practitioner_role_id"')[1].split('<option value="')[1]
    role_id = role_id.split('"')[0]
    added = await client.post(
        "/availability/exceptions",
        data={
            "_csrf_token": token,
            "practitioner_role_id": role_id,
            "kind": "unavailable",
            "starts_at": "2099-01-05T08:00",
            "ends_at": "2099-01-05T12:00",
            "reason": "Nhầm ngày",
        },
    )
    assert added.status_code == 303, added.text
    page = (await client.get("/availability")).text
    exception_id = page.split('id="exception-')[1].split('"')[0]

    client.cookies.clear()
    await page_login(client, "bs.da")  # another specialist
    token = await csrf_token(client, "/availability")
    refused = await client.post(
        "/availability/remove-exception",
        data={"_csrf_token": token, "exception_id": exception_id},
    )
    assert refused.status_code == 403
    assert "Nhầm ngày" not in refused.text

    client.cookies.clear()
    await page_login(client, "bs.tim")
    assert f'id="exception-{exception_id}"' in (await client.get("/availability")).text
    token = await csrf_token(client, "/availability")
    removed = await client.post(
        "/availability/remove-exception",
        data={"_csrf_token": token, "exception_id": exception_id},
    )
    assert removed.status_code == 303
    assert f'id="exception-{exception_id}"' not in (await client.get("/availability")).text
    gone = await client.post(
        "/availability/remove-exception",
        data={"_csrf_token": token, "exception_id": exception_id},
    )
    assert gone.status_code == 404
