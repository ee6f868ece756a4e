"""Availability through the HTTP API: who may publish, exceptions, regeneration, search."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from tests.consult_support import (
    CARDIOLOGY,
    accepted_request,
    me,
    own_patients,
    publish_week,
    service_of,
    slots,
)
from tests.helpers import assert_problem, login

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _local(slot: dict[str, str]) -> datetime:
    return datetime.fromisoformat(slot["starts_at"]).astimezone(VN)


async def test_only_the_specialist_or_their_coordinator_publishes(
    client: httpx.AsyncClient,
) -> None:
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    rule = {
        "practitioner_role_id": role["id"],
        "weekday": 0,
        "start_time": "08:00",
        "end_time": "09:00",
        "slot_minutes": 30,
    }
    for username in ("bs.da", "bs.xa1", "quantri"):
        assert_problem(
            await client.post(
                "/api/availability/rules", json=rule, headers=await login(client, username)
            ),
            403,
        )
    paediatrics = await service_of(client, await login(client, "bs.nhi"))
    coordinator = await login(client, "dieuphoi")
    other_hospital = {**rule, "practitioner_role_id": paediatrics["id"]}
    assert_problem(
        await client.post("/api/availability/rules", json=other_hospital, headers=coordinator), 403
    )
    published = await client.post("/api/availability/rules", json=rule, headers=coordinator)
    assert published.status_code == 201, published.text
    assert published.json()["slots"]["added"] >= 8 * 2 - 2
    clash = await client.post(
        "/api/availability/rules",
        json={**rule, "start_time": "08:30", "end_time": "10:00"},
        headers=cardio,
    )
    assert_problem(clash, 422, field="start_time")
    bad = await client.post(
        "/api/availability/rules", json={**rule, "weekday": 1, "end_time": "07:00"}, headers=cardio
    )
    assert_problem(bad, 422, field="end_time")


async def test_slots_are_local_rules_stored_in_utc_over_the_horizon(
    client: httpx.AsyncClient,
) -> None:
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"], "06:00", "07:00", 30)
    found = await slots(client, cardio, practitioner_role_id=role["id"], limit=200)
    assert found == sorted(found, key=lambda s: s["starts_at"])
    assert {_local(s).strftime("%H:%M") for s in found} == {"06:00", "06:30"}
    assert all(datetime.fromisoformat(s["starts_at"]).utcoffset() == timedelta(0) for s in found)
    assert {datetime.fromisoformat(s["starts_at"]).hour for s in found} == {
        23
    }  # the UTC day before
    days = {_local(s).date() for s in found}
    assert 8 * 7 - 1 <= len(days) <= 8 * 7 + 1


async def test_leave_and_extra_hours(client: httpx.AsyncClient) -> None:
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"], "08:00", "10:00", 30)
    day = (datetime.now(VN) + timedelta(days=3)).date()
    leave = await client.post(
        "/api/availability/exceptions",
        json={
            "practitioner_role_id": role["id"],
            "kind": "unavailable",
            "starts_at": f"{day}T00:00:00+07:00",
            "ends_at": f"{day + timedelta(days=1)}T00:00:00+07:00",
            "reason": "Nghỉ phép",
        },
        headers=cardio,
    )
    assert leave.status_code == 201, leave.text
    assert leave.json()["slots"]["removed"] == 4
    extra = await client.post(
        "/api/availability/exceptions",
        json={
            "practitioner_role_id": role["id"],
            "kind": "extra",
            "starts_at": f"{day}T19:00:00+07:00",
            "ends_at": f"{day}T20:00:00+07:00",
            "slot_minutes": 20,
        },
        headers=cardio,
    )
    assert extra.json()["slots"]["added"] == 3
    that_day = [
        s
        for s in await slots(client, cardio, practitioner_role_id=role["id"], limit=200)
        if _local(s).date() == day
    ]
    assert [_local(s).strftime("%H:%M") for s in that_day] == ["19:00", "19:20", "19:40"]
    naive = await client.post(
        "/api/availability/exceptions",
        json={
            "practitioner_role_id": role["id"],
            "kind": "unavailable",
            "starts_at": f"{day}T08:00:00",
            "ends_at": f"{day}T09:00:00",
        },
        headers=cardio,
    )
    assert naive.status_code == 400


async def test_removing_a_rule_keeps_booked_slots_and_reports_them(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    published = await publish_week(client, cardio, role["id"])
    request = await accepted_request(
        client, doctor, cardio, (await own_patients(client, doctor))[0]
    )
    target = (await slots(client, doctor, practitioner_role_id=role["id"]))[0]
    booked = await client.post(
        "/api/appointments",
        json={"request_id": request["id"], "slot_id": target["id"]},
        headers=doctor,
    )
    assert booked.status_code == 201
    weekday = _local(target).weekday()
    rule_id = next(p["rule"]["id"] for p in published if p["rule"]["weekday"] == weekday)
    removed = await client.delete(f"/api/availability/rules/{rule_id}", headers=cardio)
    assert removed.status_code == 200, removed.text
    report = removed.json()
    assert [c["starts_at"] for c in report["conflicts"]] == [target["starts_at"]]
    assert report["removed"] > 0
    left = await slots(client, doctor, practitioner_role_id=role["id"], limit=200)
    assert weekday not in {_local(s).weekday() for s in left}
    appointment = await client.get(f"/api/appointments/{booked.json()['id']}", headers=doctor)
    assert appointment.json()["status"] == "booked"


async def test_leave_added_by_mistake_is_removed_by_its_owner_only(
    client: httpx.AsyncClient,
) -> None:
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"], "08:00", "10:00", 30)
    day = (datetime.now(VN) + timedelta(days=3)).date()

    async def that_day() -> list[str]:
        found = await slots(client, cardio, practitioner_role_id=role["id"], limit=200)
        return [_local(s).strftime("%H:%M") for s in found if _local(s).date() == day]

    leave = await client.post(
        "/api/availability/exceptions",
        json={
            "practitioner_role_id": role["id"],
            "kind": "unavailable",
            "starts_at": f"{day}T00:00:00+07:00",
            "ends_at": f"{day + timedelta(days=1)}T00:00:00+07:00",
        },
        headers=cardio,
    )
    assert leave.status_code == 201, leave.text
    leave_id = leave.json()["exception"]["id"]
    assert await that_day() == []
    listed = await client.get(
        "/api/availability/exceptions",
        params={"practitioner_role_id": role["id"]},
        headers=cardio,
    )
    assert [e["id"] for e in listed.json()] == [leave_id]

    for username in ("bs.da", "bs.xa1"):  # another specialist, a requesting doctor
        other = await login(client, username)
        assert_problem(
            await client.delete(f"/api/availability/exceptions/{leave_id}", headers=other), 403
        )
        assert_problem(
            await client.get(
                "/api/availability/exceptions",
                params={"practitioner_role_id": role["id"]},
                headers=other,
            ),
            403,
        )
    assert await that_day() == []  # refused: nothing changed

    removed = await client.delete(f"/api/availability/exceptions/{leave_id}", headers=cardio)
    assert removed.status_code == 200, removed.text
    assert removed.json()["added"] == 4
    assert await that_day() == ["08:00", "08:30", "09:00", "09:30"]
    again = await client.delete(f"/api/availability/exceptions/{leave_id}", headers=cardio)
    assert_problem(again, 404)


async def test_urgent_requests_see_the_soonest_slots_of_every_specialist(
    client: httpx.AsyncClient,
) -> None:
    doctor = await login(client, "bs.xa1")
    cardio = await login(client, "bs.tim")
    internist = await login(client, "bs.noi")
    tim_role = await service_of(client, cardio)
    second = await client.post(
        "/api/practitioner-roles",
        json={
            "practitioner_id": (await me(client, internist))["practitioner_id"],
            "organization_id": tim_role["organization_id"],
            "specialty_code": CARDIOLOGY,
        },
        headers=await login(client, "quantri"),
    )
    assert second.status_code == 201, second.text
    # The cardiologist works only three days from now; the internist every morning, so at any
    # hour of the day the internist's next slot comes first.
    in_three_days = (datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")) + timedelta(days=3)).weekday()
    await publish_week(
        client,
        cardio,
        tim_role["id"],
        "14:00",
        "16:00",
        weekdays=range(in_three_days, in_three_days + 1),
    )
    await publish_week(client, internist, second.json()["id"], "07:00", "08:00")
    patients = await own_patients(client, doctor)
    routine = await accepted_request(client, doctor, cardio, patients[0])
    urgent = await accepted_request(client, doctor, cardio, patients[1], priority="urgent")

    routine_slots = (
        await client.get(f"/api/consults/{routine['id']}/slots", headers=doctor)
    ).json()
    urgent_slots = (await client.get(f"/api/consults/{urgent['id']}/slots", headers=doctor)).json()
    assert {s["practitioner_role_id"] for s in routine_slots} == {tim_role["id"]}
    assert urgent_slots[0]["starts_at"] < routine_slots[0]["starts_at"]
    soonest = urgent_slots[0]
    assert soonest["practitioner_role_id"] == second.json()["id"]
    refused = await client.post(
        "/api/appointments",
        json={"request_id": routine["id"], "slot_id": soonest["id"]},
        headers=doctor,
    )
    assert_problem(refused, 422, field="slot_id")
    booked = await client.post(
        "/api/appointments",
        json={"request_id": urgent["id"], "slot_id": soonest["id"]},
        headers=doctor,
    )
    assert booked.status_code == 201, booked.text
    reassigned = (await client.get(f"/api/consults/{urgent['id']}", headers=doctor)).json()
    assert reassigned["assigned_role_id"] == second.json()["id"]


async def test_hold_keeps_a_slot_for_the_request(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    other = await login(client, "bs.xa2")
    cardio = await login(client, "bs.tim")
    role = await service_of(client, cardio)
    await publish_week(client, cardio, role["id"])
    slot = (await slots(client, doctor, practitioner_role_id=role["id"]))[0]
    mine = await accepted_request(client, doctor, cardio, (await own_patients(client, doctor))[0])
    theirs = await accepted_request(client, other, cardio, (await own_patients(client, other))[0])
    held = await client.post(
        f"/api/slots/{slot['id']}/hold", json={"request_id": mine["id"]}, headers=doctor
    )
    assert held.status_code == 200 and held.json()["status"] == "held"
    assert_problem(
        await client.post(
            f"/api/slots/{slot['id']}/hold", json={"request_id": theirs["id"]}, headers=other
        ),
        409,
    )
    assert slot["id"] not in [
        s["id"] for s in await slots(client, other, practitioner_role_id=role["id"])
    ]
    taken = await client.post(
        "/api/appointments", json={"request_id": theirs["id"], "slot_id": slot["id"]}, headers=other
    )
    assert_problem(taken, 409)
    booked = await client.post(
        "/api/appointments", json={"request_id": mine["id"], "slot_id": slot["id"]}, headers=doctor
    )
    assert booked.status_code == 201, booked.text
