"""The directory over HTTP: facility hierarchy, practitioners, their roles, specialties."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlmodel import func, select

from telehealth.db import Database
from telehealth.directory.models import Organization, PractitionerRole
from telehealth.errors import Conflict
from tests.helpers import assert_problem, login

ORGS = "/api/organizations"


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: object
) -> httpx.Response:
    return await client.post(ORGS, json=fields, headers=headers)


async def test_hierarchy_of_any_depth(client: httpx.AsyncClient) -> None:
    admin = await login(client, "quantri")
    parent = None
    chain = []
    for index, level in enumerate(["central", "provincial", "district", "commune"]):
        created = await _create(
            client,
            admin,
            name=f"Cơ sở {level}",
            level=level,
            moh_code=f"99{index:03d}",
            parent_id=parent,
        )
        assert created.status_code == 201, created.text
        parent = created.json()["id"]
        chain.append(created.json())
    assert [o["parent_id"] for o in chain[1:]] == [o["id"] for o in chain[:-1]]
    children = await client.get(ORGS, params={"parent_id": chain[0]["id"]}, headers=admin)
    assert [o["id"] for o in children.json()["items"]] == [chain[1]["id"]]
    read = await client.get(f"{ORGS}/{chain[-1]['id']}", headers=admin)
    assert read.json()["level"] == "commune"


async def test_level_rules_and_unknown_parent(client: httpx.AsyncClient) -> None:
    admin = await login(client, "quantri")
    commune = (await client.get(ORGS, params={"moh_code": "82101"}, headers=admin)).json()["items"][
        0
    ]
    under_commune = await _create(
        client, admin, name="Trạm mới", level="commune", moh_code="99101", parent_id=commune["id"]
    )
    body = assert_problem(under_commune, 422, field="parent_id")
    assert "commune" in str(body["detail"])
    unknown = await _create(
        client,
        admin,
        name="Trạm mới",
        level="commune",
        moh_code="99102",
        parent_id="00000000-0000-4000-8000-000000000000",
    )
    assert_problem(unknown, 422, field="parent_id")

    district = (await client.get(ORGS, params={"moh_code": "82010"}, headers=admin)).json()[
        "items"
    ][0]
    demote = await client.patch(
        f"{ORGS}/{district['id']}", json={"level": "commune"}, headers=admin
    )
    assert_problem(demote, 422, field="level")
    own_parent = await client.patch(
        f"{ORGS}/{district['id']}", json={"parent_id": district["id"]}, headers=admin
    )
    assert_problem(own_parent, 422, field="parent_id")
    moved = await client.patch(
        f"{ORGS}/{commune['id']}", json={"parent_id": district["parent_id"]}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_id"] == district["parent_id"]


async def test_duplicate_ministry_code_is_409_even_when_racing(
    client: httpx.AsyncClient, db: Database
) -> None:
    admin = await login(client, "quantri")
    taken = await _create(client, admin, name="Trùng mã", level="provincial", moh_code="82001")
    assert_problem(taken, 409)
    racing = await asyncio.gather(
        *(
            _create(client, admin, name=f"Đua {n}", level="provincial", moh_code="99777")
            for n in range(6)
        )
    )
    statuses = sorted(r.status_code for r in racing)
    assert statuses == [201] + [409] * 5, [r.text for r in racing]
    for loser in racing:
        if loser.status_code == 409:
            assert_problem(loser, 409)
    async with db.unit_of_work() as session:
        count = (
            await session.exec(
                select(func.count())
                .select_from(Organization)
                .where(Organization.moh_code == "99777")
            )
        ).one()
    assert count == 1


async def test_name_search_ignores_diacritics_and_case(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    for query in ("benh vien nhi", "BỆNH VIỆN NHI", "nhi dong thap"):
        found = await client.get(ORGS, params={"name": query}, headers=headers)
        names = [o["name"] for o in found.json()["items"]]
        assert names == ["Bệnh viện Nhi đồng tỉnh Đồng Tháp"], (query, names)
    communes = await client.get(ORGS, params={"level": "commune"}, headers=headers)
    assert communes.json()["total"] == 6
    page = await client.get(
        ORGS, params={"level": "commune", "limit": 4, "offset": 4}, headers=headers
    )
    assert len(page.json()["items"]) == 2 and page.json()["total"] == 6


async def test_only_administrators_change_the_directory(client: httpx.AsyncClient) -> None:
    doctor = await login(client, "bs.xa1")
    refused = await _create(client, doctor, name="Của tôi", level="commune", moh_code="99301")
    assert_problem(refused, 403)
    any_org = (await client.get(ORGS, headers=doctor)).json()["items"][0]
    renamed = await client.patch(f"{ORGS}/{any_org['id']}", json={"name": "X"}, headers=doctor)
    assert_problem(renamed, 403)
    practitioner = await client.post(
        "/api/practitioners", json={"full_name": "BS. Giả"}, headers=doctor
    )
    assert_problem(practitioner, 403)


async def test_organization_update_rejects_null_for_required_fields(
    client: httpx.AsyncClient,
) -> None:
    admin = await login(client, "quantri")
    org = (await client.get(ORGS, params={"moh_code": "82101"}, headers=admin)).json()["items"][0]
    for field in ("name", "level", "active"):
        response = await client.patch(f"{ORGS}/{org['id']}", json={field: None}, headers=admin)
        assert_problem(response, 400, field=field)
    cleared = await client.patch(
        f"{ORGS}/{org['id']}", json={"address": None, "phone": None}, headers=admin
    )
    assert cleared.status_code == 200 and cleared.json()["address"] is None


async def test_specialties_are_listed_with_both_languages(client: httpx.AsyncClient) -> None:
    headers = await login(client, "bs.xa1")
    specialties = (await client.get("/api/specialties", headers=headers)).json()
    by_code = {s["code"]: s for s in specialties}
    assert by_code["394579002"]["name_vi"] == "Tim mạch"
    assert by_code["394579002"]["name_en"] == "Cardiology"
    assert {"394537008", "394585009", "394582007", "419192003"} <= set(by_code)


async def test_practitioners_and_their_roles(client: httpx.AsyncClient) -> None:
    admin = await login(client, "quantri")
    created = await client.post(
        "/api/practitioners",
        json={
            "full_name": "  BS.CKI  Đặng Thị Hồng  ",
            "licence_number": "009001/DT-CCHN",
            "gender": "female",
            "phone": "0912 000 111",
            "email": "hong@example.vn",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["full_name"] == "BS.CKI Đặng Thị Hồng"
    assert person["phone"] == "+84912000111"
    duplicate = await client.post(
        "/api/practitioners",
        json={"full_name": "Người khác", "licence_number": "009001/DT-CCHN"},
        headers=admin,
    )
    assert_problem(duplicate, 409)

    hospital = (await client.get(ORGS, params={"moh_code": "82001"}, headers=admin)).json()[
        "items"
    ][0]
    role = {
        "practitioner_id": person["id"],
        "organization_id": hospital["id"],
        "specialty_code": "394582007",
    }
    added = await client.post("/api/practitioner-roles", json=role, headers=admin)
    assert added.status_code == 201, added.text
    assert_problem(await client.post("/api/practitioner-roles", json=role, headers=admin), 409)
    unknown = await client.post(
        "/api/practitioner-roles", json=role | {"specialty_code": "123456"}, headers=admin
    )
    assert_problem(unknown, 422, field="specialty_code")
    general = {k: v for k, v in role.items() if k != "specialty_code"}
    assert (
        await client.post("/api/practitioner-roles", json=general, headers=admin)
    ).status_code == 201
    assert_problem(await client.post("/api/practitioner-roles", json=general, headers=admin), 409)

    doctor = await login(client, "bs.xa1")
    derm = await client.get("/api/practitioners", params={"specialty": "394582007"}, headers=doctor)
    assert {p["full_name"] for p in derm.json()["items"]} == {
        "BS.CKI Võ Minh Khang",
        "BS.CKI Đặng Thị Hồng",
    }
    by_name = await client.get("/api/practitioners", params={"name": "dang hong"}, headers=doctor)
    assert [p["id"] for p in by_name.json()["items"]] == [person["id"]]
    roles = await client.get(
        "/api/practitioner-roles", params={"practitioner_id": person["id"]}, headers=doctor
    )
    assert len(roles.json()) == 2
    renamed = await client.patch(
        f"/api/practitioners/{person['id']}",
        json={"full_name": "BS.CKII Đặng Thị Hồng"},
        headers=admin,
    )
    assert renamed.json()["full_name"] == "BS.CKII Đặng Thị Hồng"
    assert_problem(
        await client.patch(
            f"/api/practitioners/{person['id']}", json={"full_name": None}, headers=admin
        ),
        400,
        field="full_name",
    )
    assert_problem(
        await client.get("/api/practitioners/00000000-0000-4000-8000-000000000000", headers=doctor),
        404,
    )


async def test_racing_general_roles_have_one_winner(client: httpx.AsyncClient) -> None:
    """A role without specialty is unique too, although SQL NULLs never compare equal."""
    admin = await login(client, "quantri")
    person = (
        await client.post("/api/practitioners", json={"full_name": "BS. Đa Khoa"}, headers=admin)
    ).json()
    station = (await client.get(ORGS, params={"moh_code": "82105"}, headers=admin)).json()
    role = {"practitioner_id": person["id"], "organization_id": station["items"][0]["id"]}
    racing = await asyncio.gather(
        *(client.post("/api/practitioner-roles", json=role, headers=admin) for _ in range(6))
    )
    assert sorted(r.status_code for r in racing) == [201] + [409] * 5, [r.text for r in racing]
    roles = await client.get(
        "/api/practitioner-roles", params={"practitioner_id": person["id"]}, headers=admin
    )
    assert len(roles.json()) == 1


async def test_the_database_itself_refuses_a_second_general_role(db: Database) -> None:
    """The invariant holds even for a writer that skips the service's check."""
    async with db.unit_of_work() as session:
        existing = (await session.exec(select(PractitionerRole))).first()
        assert existing is not None
        general = PractitionerRole(
            practitioner_id=existing.practitioner_id, organization_id=existing.organization_id
        )
        session.add(general)
    with pytest.raises(Conflict):
        async with db.unit_of_work() as session:
            session.add(
                PractitionerRole(
                    practitioner_id=general.practitioner_id,
                    organization_id=general.organization_id,
                )
            )
