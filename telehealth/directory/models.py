"""Directory tables: the facility hierarchy, practitioners and their roles, patients.

Facility levels are the health system's (central, provincial, district, commune); the places
themselves are rows, so a province merger is a data change, not a code change.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field

from telehealth.models import Entity, enum_type


class FacilityLevel(StrEnum):
    CENTRAL = "central"
    PROVINCIAL = "provincial"
    DISTRICT = "district"
    COMMUNE = "commune"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class Organization(Entity, table=True):
    __tablename__ = "organization"

    name: str = Field(max_length=200)
    name_folded: str = Field(max_length=200, index=True)
    level: FacilityLevel = Field(sa_type=enum_type(FacilityLevel), index=True)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="organization.id", index=True)
    moh_code: str = Field(
        max_length=16, unique=True, description="Ministry of Health facility code"
    )
    admin_unit_code: str | None = Field(default=None, max_length=8)
    address: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=20)
    active: bool = True


class Specialty(Entity, table=True):
    """A clinical specialty (SNOMED CT practice-setting code) a consult service offers."""

    __tablename__ = "specialty"

    code: str = Field(max_length=32, unique=True)
    name_vi: str = Field(max_length=120)
    name_en: str = Field(max_length=120)


class Practitioner(Entity, table=True):
    __tablename__ = "practitioner"

    full_name: str = Field(max_length=120)
    name_folded: str = Field(max_length=120, index=True)
    licence_number: str | None = Field(default=None, max_length=32, unique=True)
    gender: Gender = Field(default=Gender.UNKNOWN, sa_type=enum_type(Gender))
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=200)
    active: bool = True


class PractitionerRole(Entity, table=True):
    """A practitioner working at a facility, in a specialty (none for general practice)."""

    __tablename__ = "practitioner_role"
    __table_args__ = (
        UniqueConstraint("practitioner_id", "organization_id", "specialty_id"),
        # The constraint above treats NULLs as distinct: one general (no-specialty) role per
        # practitioner and facility needs an index of its own.
        Index(
            "uq_practitioner_role_general",
            "practitioner_id",
            "organization_id",
            unique=True,
            postgresql_where=text("specialty_id IS NULL"),
            sqlite_where=text("specialty_id IS NULL"),
        ),
    )

    practitioner_id: uuid.UUID = Field(foreign_key="practitioner.id", index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    specialty_id: uuid.UUID | None = Field(default=None, foreign_key="specialty.id", index=True)
    active: bool = True


class Patient(Entity, table=True):
    __tablename__ = "patient"
    __table_args__ = (Index("ix_patient_org_name", "organization_id", "name_folded"),)

    full_name: str = Field(max_length=120)
    name_folded: str = Field(max_length=120, index=True)
    gender: Gender = Field(sa_type=enum_type(Gender))
    birth_date: date
    national_id: str | None = Field(default=None, max_length=12, unique=True)
    insurance_number: str | None = Field(default=None, max_length=15, unique=True)
    phone: str | None = Field(default=None, max_length=20)
    address: str | None = Field(default=None, max_length=300)
    admin_unit_code: str | None = Field(default=None, max_length=8)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
