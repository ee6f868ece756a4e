"""Demo data: one province's network, with accounts for every role and realistic patients.

Đồng Tháp after the 2025 merger (it absorbed Tiền Giang): two provincial hospitals, two
district-level medical centres, six commune health stations at real wards, specialists in the
main consult specialties, a coordinator, doctors at every station, an administrator and a
hospital system client. Identifiers are valid by structure and made up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import Role, UserAccount
from telehealth.auth.service import NewAccount, create_account, create_client
from telehealth.consent.models import ConsentMethod, ConsentPurpose, PatientConsent
from telehealth.directory.identifiers import fold_name
from telehealth.directory.models import (
    FacilityLevel,
    Gender,
    Organization,
    Patient,
    Practitioner,
    PractitionerRole,
    Specialty,
)
from telehealth.settings import Settings

# As long as the password rules ask of an account without two-factor sign-in (16).
DEMO_PASSWORD = "telehealth-demo-only"  # noqa: S105  (demo data only)
DEMO_CLIENT_ID = "his-bvdk-dongthap"
DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105  (demo data only)

_PROVINCIAL = [
    ("82001", "Bệnh viện Đa khoa tỉnh Đồng Tháp", "28261"),
    ("82002", "Bệnh viện Nhi đồng tỉnh Đồng Tháp", "28249"),
]
_DISTRICT = [
    ("82010", "Trung tâm Y tế khu vực Cai Lậy", "28439"),
    ("82011", "Trung tâm Y tế khu vực Gò Công", "28306"),
]
_COMMUNE = [
    ("82101", "Trạm Y tế phường Mỹ Phong", "28273", 0),
    ("82102", "Trạm Y tế phường Thới Sơn", "28270", 0),
    ("82103", "Trạm Y tế phường Trung An", "28285", 0),
    ("82104", "Trạm Y tế phường Long Thuận", "28297", 1),
    ("82105", "Trạm Y tế phường Bình Xuân", "28315", 1),
    ("82106", "Trạm Y tế phường Thanh Hòa", "28436", 0),
]
# (username, name, specialty code, index of provincial hospital)
_SPECIALISTS = [
    ("bs.tim", "BS.CKII Trần Quốc Bảo", "394579002", 0),
    ("bs.nhi", "BS.CKII Lê Thị Ngọc Hân", "394537008", 1),
    ("bs.san", "ThS.BS Phạm Thị Thu Trang", "394585009", 0),
    ("bs.da", "BS.CKI Võ Minh Khang", "394582007", 0),
    ("bs.noi", "BS.CKII Nguyễn Văn Phúc", "419192003", 0),
    ("bs.cdha", "BS.CKI Huỳnh Thanh Tùng", "394914008", 0),
]
_FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Huỳnh",
    "Võ",
    "Phan",
    "Trương",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
]
_MIDDLE = {
    Gender.MALE: ["Văn", "Minh", "Quốc", "Hữu", "Thanh"],
    Gender.FEMALE: ["Thị", "Ngọc", "Thu", "Kim", "Mỹ"],
}
_GIVEN = {
    Gender.MALE: [
        "An",
        "Bình",
        "Cường",
        "Dũng",
        "Hải",
        "Hùng",
        "Khoa",
        "Long",
        "Nam",
        "Phát",
        "Sơn",
        "Tài",
    ],
    Gender.FEMALE: [
        "Anh",
        "Chi",
        "Diễm",
        "Hằng",
        "Hoa",
        "Lan",
        "Linh",
        "Mai",
        "Nhung",
        "Thảo",
        "Trâm",
        "Vy",
    ],
}
_BHYT_GROUPS = ["GD", "HN", "TE", "DN", "HT", "CN", "BT"]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role
    facility: str


def _cccd(rng: random.Random, born: date, gender: Gender) -> str:
    century = {1900: 0, 2000: 2}[born.year // 100 * 100]
    digit = century + (1 if gender == Gender.FEMALE else 0)
    return f"082{digit}{born.year % 100:02d}{rng.randrange(10**6):06d}"


def _patient(rng: random.Random, organization: Organization, admin_unit: str | None) -> Patient:
    gender = rng.choice([Gender.MALE, Gender.FEMALE])
    name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE[gender])} {rng.choice(_GIVEN[gender])}"
    born = date(rng.randint(1938, 2023), rng.randint(1, 12), rng.randint(1, 28))
    group = "TE" if born.year >= 2019 else rng.choice(_BHYT_GROUPS)
    return Patient(
        full_name=name,
        name_folded=fold_name(name),
        gender=gender,
        birth_date=born,
        national_id=_cccd(rng, born, gender) if born.year < 2012 else None,
        insurance_number=f"{group}{rng.randint(1, 5)}82{rng.randrange(10**10):010d}",
        phone=f"+849{rng.randrange(10**8):08d}" if rng.random() < 0.7 else None,
        address=f"Ấp {rng.randint(1, 9)}, {organization.name.removeprefix('Trạm Y tế ')}",
        admin_unit_code=admin_unit,
        organization_id=organization.id,
    )


async def _consenting(session: AsyncSession, doctor: UserAccount, patients: list[Patient]) -> None:
    """The demo's patients, each with the consents their doctor recorded (electronic, for
    every purpose), so that the demo's requests can be sent and its sessions recorded."""
    session.add_all(patients)
    await session.flush()
    session.add_all(
        PatientConsent(
            patient_id=patient.id,
            purpose=purpose,
            method=ConsentMethod.ELECTRONIC,
            recorded_by=doctor.id,
        )
        for patient in patients
        for purpose in ConsentPurpose
    )


async def seed_demo(
    session: AsyncSession, settings: Settings | None = None
) -> list[DemoLogin] | None:
    """Load the demo network once; returns the logins, or None if it was there already.

    Its accounts must meet the password rules (``settings``, or the defaults), but are not
    made to change their password at the first login: the password is published for trying
    the service, and a forced change would end every demo and test at the first page."""
    rules = settings or Settings()
    if (
        await session.exec(
            select(Organization.id).where(Organization.moh_code == _PROVINCIAL[0][0])
        )
    ).first():
        return None
    rng = random.Random(82)  # the same people on every machine
    logins: list[DemoLogin] = []

    def facility(
        code: str, name: str, level: FacilityLevel, parent: Organization | None, unit: str
    ) -> Organization:
        org = Organization(
            name=name,
            name_folded=fold_name(name),
            level=level,
            moh_code=code,
            admin_unit_code=unit,
            parent_id=parent.id if parent else None,
        )
        session.add(org)
        return org

    async def account(
        username: str,
        name: str,
        role: Role,
        org: Organization,
        practitioner: Practitioner | None = None,
    ) -> UserAccount:
        created = await create_account(
            session,
            rules,
            None,
            NewAccount(
                username=username,
                password=DEMO_PASSWORD,
                display_name=name,
                role=role,
                organization_id=org.id,
                practitioner_id=practitioner.id if practitioner else None,
                must_change_password=False,
            ),
        )
        logins.append(DemoLogin(username, role, org.name))
        return created

    def practitioner(
        name: str,
        gender: Gender,
        organization: Organization,
        specialty: Specialty | None,
        licence: str,
    ) -> Practitioner:
        person = Practitioner(
            full_name=name, name_folded=fold_name(name), gender=gender, licence_number=licence
        )
        session.add(person)
        session.add(
            PractitionerRole(
                practitioner_id=person.id,
                organization_id=organization.id,
                specialty_id=specialty.id if specialty else None,
            )
        )
        return person

    provincial = [facility(c, n, FacilityLevel.PROVINCIAL, None, u) for c, n, u in _PROVINCIAL]
    districts = [facility(c, n, FacilityLevel.DISTRICT, provincial[0], u) for c, n, u in _DISTRICT]
    communes = [
        (facility(c, n, FacilityLevel.COMMUNE, districts[d], u), u) for c, n, u, d in _COMMUNE
    ]
    await session.flush()
    specialties = {s.code: s for s in (await session.exec(select(Specialty))).all()}

    for index, (username, name, code, hospital) in enumerate(_SPECIALISTS):
        gender = Gender.FEMALE if " Thị " in name else Gender.MALE
        person = practitioner(
            name, gender, provincial[hospital], specialties[code], f"000{index + 1:03d}/DT-CCHN"
        )
        await session.flush()
        await account(username, name, Role.SPECIALIST, provincial[hospital], person)
    await account("dieuphoi", "CN. Đoàn Thị Mỹ Duyên", Role.COORDINATOR, provincial[0])
    await account("quantri", "KS. Lâm Quốc Việt", Role.ADMINISTRATOR, provincial[0])
    general = specialties["408443003"]
    for index, (station, unit) in enumerate(communes):
        name = f"BS. {rng.choice(_FAMILY)} {rng.choice(_MIDDLE[Gender.MALE])} {rng.choice(_GIVEN[Gender.MALE])}"
        person = practitioner(name, Gender.MALE, station, general, f"001{index + 1:03d}/DT-CCHN")
        await session.flush()
        doctor = await account(f"bs.xa{index + 1}", name, Role.REQUESTER, station, person)
        await _consenting(session, doctor, [_patient(rng, station, unit) for _ in range(6)])
    for index, district in enumerate(districts):
        name = f"BS.CKI {rng.choice(_FAMILY)} {rng.choice(_MIDDLE[Gender.FEMALE])} {rng.choice(_GIVEN[Gender.FEMALE])}"
        person = practitioner(
            name, Gender.FEMALE, district, specialties["419192003"], f"002{index + 1:03d}/DT-CCHN"
        )
        await session.flush()
        doctor = await account(f"bs.huyen{index + 1}", name, Role.REQUESTER, district, person)
        await _consenting(
            session, doctor, [_patient(rng, district, district.admin_unit_code) for _ in range(4)]
        )
    await create_client(
        session,
        None,
        client_id=DEMO_CLIENT_ID,
        name="HIS Bệnh viện Đa khoa tỉnh Đồng Tháp",
        scopes="system/Patient.rs system/Organization.rs system/Practitioner.rs system/PractitionerRole.rs",
        organization_id=provincial[0].id,
        secret=DEMO_CLIENT_SECRET,
    )
    await session.flush()
    return logins


async def demo_accounts(session: AsyncSession) -> list[DemoLogin]:
    rows = await session.exec(
        select(UserAccount, Organization).join(Organization).order_by(UserAccount.role)
    )
    return [DemoLogin(user.username, user.role, org.name) for user, org in rows.all()]
