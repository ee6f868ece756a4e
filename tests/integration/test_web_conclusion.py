"""The specialist's conclusion page over HTTP: only the assigned specialist may open or post
it; refusals are shown beside the fields with everything typed kept; once saved, the
requesting doctor reads it on the request's page."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.consult_support import accepted_request, own_patients, publish_week, service_of, slots
from tests.helpers import assert_problem, login
from tests.integration.test_web_session import csrf_token, page_login


async def booked_consult(client: httpx.AsyncClient) -> tuple[str, str]:
    """A cardiology request by bs.xa1, accepted by bs.tim and booked: (request, appointment)."""
    doctor, cardio = await login(client, "bs.xa1"), await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    patient = (await own_patients(client, doctor))[0]
    request = await accepted_request(client, doctor, cardio, patient)
    slot = (await slots(client, doctor, practitioner_role_id=role["id"]))[0]
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": slot["id"]},
        headers=doctor,
    )
    assert booked.status_code == 201, booked.text
    return request["id"], booked.json()["id"]


def field_error(html: str, name: str) -> str:
    return html.split(f'id="e-{name}"')[1].split(">", 1)[1].split("</small>")[0].strip()


async def test_only_the_assigned_specialist_concludes(client: httpx.AsyncClient) -> None:
    request_id, appointment_id = await booked_consult(client)
    url = f"/appointments/{appointment_id}/conclude"
    valid = {"diagnoses": "I20.0", "recommendation": "treat_locally", "advice": "Aspirin 81 mg"}
    for username, status in (("bs.xa1", 403), ("dieuphoi", 403), ("bs.da", 404)):
        client.cookies.clear()
        await page_login(client, username)
        assert (await client.get(url)).status_code == status, username
        token = await csrf_token(client, "/notifications")
        posted = await client.post(url, data={"_csrf_token": token, **valid})
        assert posted.status_code == status, username
        assert "Aspirin" not in posted.text
    appointment = await client.get(
        f"/api/appointments/{appointment_id}", headers=await login(client, "bs.tim")
    )
    assert appointment.json()["status"] == "booked"  # nothing changed

    client.cookies.clear()
    await page_login(client, "bs.tim")
    form = await client.get(url)
    assert form.status_code == 200
    assert 'value="I20.0, I10"' in form.text  # the requester's diagnoses, to edit
    assert "Điều trị tại tuyến dưới" in form.text
    await client.get("/lang/en", params={"next": url})
    english = await client.get(url)
    assert "Treat locally (at the requesting facility)" in english.text
    assert "Follow-up date (if any)" in english.text
    token = await csrf_token(client, url)
    concluded = await client.post(url, data={"_csrf_token": token, **valid})
    assert concluded.status_code == 303
    assert concluded.headers["location"] == f"/consults/{request_id}?saved=1"
    again = await client.get(url)  # concluded already: the form leads to the conclusion
    assert again.status_code == 303 and again.headers["location"].endswith("#conclusion")


async def test_refusals_are_shown_beside_the_fields_and_keep_the_input(
    client: httpx.AsyncClient,
) -> None:
    request_id, appointment_id = await booked_consult(client)
    url = f"/appointments/{appointment_id}/conclude"
    await page_login(client, "bs.tim")
    token = await csrf_token(client, url)

    empty = await client.post(url, data={"_csrf_token": token, "diagnoses": ""})
    assert empty.status_code == 422
    for name in ("diagnoses", "recommendation", "advice"):
        assert field_error(empty.text, name) == "là bắt buộc", name

    typed = {
        "_csrf_token": token,
        "recommendation": "follow_up",
        "advice": "Theo dõi huyết áp hằng ngày",
    }
    unknown = await client.post(url, data={**typed, "diagnoses": "I20.0, Z99.99X"})
    assert unknown.status_code == 422
    assert "Z99.99X" in field_error(unknown.text, "diagnoses")
    assert "Theo dõi huyết áp hằng ngày" in unknown.text
    assert 'value="follow_up" id="f-recommendation-follow_up" required\n      checked' in (
        unknown.text
    )

    yesterday = (date.today() - timedelta(days=2)).isoformat()
    past = await client.post(url, data={**typed, "diagnoses": "I20.0", "follow_up_on": yesterday})
    assert past.status_code == 422
    assert field_error(past.text, "follow_up_on") == "đã qua"
    assert f'value="{yesterday}"' in past.text

    later = (date.today() + timedelta(days=30)).isoformat()
    saved = await client.post(url, data={**typed, "diagnoses": "I20.0 I10", "follow_up_on": later})
    assert saved.status_code == 303

    # The requesting doctor reads it on the request's page; the API has the same.
    client.cookies.clear()
    await page_login(client, "bs.xa1")
    page = (await client.get(f"/consults/{request_id}")).text
    conclusion = page.split('id="conclusion"')[1].split("</section>")[0]
    assert "Hội chẩn lại hoặc tái khám" in conclusion
    assert "Theo dõi huyết áp hằng ngày" in conclusion
    assert date.fromisoformat(later).strftime("%d/%m/%Y") in conclusion
    assert "I20.0" in conclusion and "I10" in conclusion
    read = await client.get(
        f"/api/appointments/{appointment_id}/conclusion", headers=await login(client, "bs.xa1")
    )
    assert read.json()["follow_up_on"] == later
    assert [d["code"] for d in read.json()["diagnoses"]] == ["I20.0", "I10"]


async def test_the_api_checks_the_follow_up_day_and_who_concludes(
    client: httpx.AsyncClient,
) -> None:
    _, appointment_id = await booked_consult(client)
    url = f"/api/appointments/{appointment_id}/conclude"
    body = {"diagnoses": ["I20.0"], "recommendation": "follow_up", "advice": "Tái khám"}
    cardio = await login(client, "bs.tim")
    past = (date.today() - timedelta(days=2)).isoformat()
    far = (date.today() + timedelta(days=400)).isoformat()
    for day in (past, far):
        refused = await client.post(url, json={**body, "follow_up_on": day}, headers=cardio)
        assert_problem(refused, 422, field="follow_up_on")
    for username, status in (("bs.xa1", 403), ("dieuphoi", 403), ("bs.da", 404)):
        other = await login(client, username)
        assert_problem(await client.post(url, json=body, headers=other), status)
    soon = (date.today() + timedelta(days=14)).isoformat()
    done = await client.post(url, json={**body, "follow_up_on": soon}, headers=cardio)
    assert done.status_code == 201, done.text
    assert done.json()["follow_up_on"] == soon
