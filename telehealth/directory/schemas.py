"""What the directory accepts and returns at the edge (API and FHIR mapping alike).

Types and lengths are checked here; rules that need context (identifier structure against
the birth date, the facility hierarchy) are checked by the service so every entry point
shares them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    field_validator,
)

from telehealth.directory.models import FacilityLevel, Gender
from telehealth.fields import Email, Name, Schema, ShortText, not_null

T = TypeVar("T")

Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z.\-]{2,16}$")]
# Practising certificate numbers look like "000123/HCM-CCHN".
Licence = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z./\-]{2,32}$")
]


class OrganizationCreate(Schema):
    name: ShortText
    level: FacilityLevel
    parent_id: uuid.UUID | None = None
    moh_code: Code = Field(description="Ministry of Health facility code")
    admin_unit_code: str | None = Field(default=None, max_length=8)
    address: ShortText | None = None
    phone: str | None = Field(default=None, max_length=30)


class OrganizationUpdate(Schema):
    name: ShortText | None = None
    level: FacilityLevel | None = None
    parent_id: uuid.UUID | None = None
    admin_unit_code: str | None = Field(default=None, max_length=8)
    address: ShortText | None = None
    phone: str | None = Field(default=None, max_length=30)
    active: bool | None = None

    _required = field_validator("name", "level", "active")(not_null)


class OrganizationRead(Schema):
    id: uuid.UUID
    name: str
    level: FacilityLevel
    parent_id: uuid.UUID | None
    moh_code: str
    admin_unit_code: str | None
    address: str | None
    phone: str | None
    active: bool
    updated_at: datetime


class SpecialtyRead(Schema):
    id: uuid.UUID
    code: str
    name_vi: str
    name_en: str


class PractitionerCreate(Schema):
    full_name: Name
    licence_number: Licence | None = Field(
        default=None, description="practising certificate number, e.g. 000123/HCM-CCHN"
    )
    gender: Gender = Gender.UNKNOWN
    phone: str | None = Field(default=None, max_length=30)
    email: Email | None = None


class PractitionerUpdate(Schema):
    full_name: Name | None = None
    gender: Gender | None = None
    phone: str | None = Field(default=None, max_length=30)
    email: Email | None = None
    active: bool | None = None

    _required = field_validator("full_name", "gender", "active")(not_null)


class PractitionerRead(Schema):
    id: uuid.UUID
    full_name: str
    licence_number: str | None
    gender: Gender
    phone: str | None
    email: str | None
    active: bool


class PractitionerRoleCreate(Schema):
    practitioner_id: uuid.UUID
    organization_id: uuid.UUID
    specialty_code: Code | None = None


class PractitionerRoleRead(Schema):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    organization_id: uuid.UUID
    specialty_id: uuid.UUID | None
    active: bool


class PatientCreate(Schema):
    full_name: Name
    gender: Gender
    birth_date: date
    national_id: str | None = Field(default=None, max_length=20, description="CCCD, 12 digits")
    insurance_number: str | None = Field(
        default=None, max_length=20, description="BHYT card, 15 characters"
    )
    phone: str | None = Field(default=None, max_length=30)
    address: ShortText | None = None
    admin_unit_code: str | None = Field(default=None, max_length=8)
    organization_id: uuid.UUID | None = Field(default=None, description="defaults to your facility")


class PatientUpdate(Schema):
    full_name: Name | None = None
    gender: Gender | None = None
    birth_date: date | None = None
    national_id: str | None = Field(default=None, max_length=20)
    insurance_number: str | None = Field(default=None, max_length=20)
    phone: str | None = Field(default=None, max_length=30)
    address: ShortText | None = None
    admin_unit_code: str | None = Field(default=None, max_length=8)

    _required = field_validator("full_name", "gender", "birth_date")(not_null)


class PatientRead(Schema):
    id: uuid.UUID
    full_name: str
    gender: Gender
    birth_date: date
    national_id: str | None
    insurance_number: str | None
    phone: str | None
    address: str | None
    admin_unit_code: str | None
    organization_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
