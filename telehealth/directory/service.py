"""Directory use cases, one import away: they load, decide with ``rules`` and
``auth.access``, and save. Each lives with its kind of record: ``organizations``,
``practitioners`` (with their roles and the specialties), ``patients``; ``records`` holds
what they share."""

from __future__ import annotations

from telehealth.directory.organizations import (
    create_organization,
    descendants,
    get_organization,
    search_organizations,
    update_organization,
)
from telehealth.directory.patients import (
    register_patient,
    search_patients,
    update_patient,
)
from telehealth.directory.practitioners import (
    add_practitioner_role,
    create_practitioner,
    get_practitioner,
    list_specialties,
    practitioner_roles,
    search_practitioners,
    specialty_by_code,
    update_practitioner,
)
from telehealth.directory.records import MAX_PAGE, name_matches

__all__ = [
    "MAX_PAGE",
    "add_practitioner_role",
    "create_organization",
    "create_practitioner",
    "descendants",
    "get_organization",
    "get_practitioner",
    "list_specialties",
    "name_matches",
    "practitioner_roles",
    "register_patient",
    "search_organizations",
    "search_patients",
    "search_practitioners",
    "specialty_by_code",
    "update_organization",
    "update_patient",
    "update_practitioner",
]
