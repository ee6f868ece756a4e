"""The CapabilityStatement and SMART configuration: generated from what is implemented
(``SEARCH_PARAMS``, ``INCLUDES``, ``WRITABLE_TYPES``), so they list exactly what works."""

from __future__ import annotations

from typing import Any

from telehealth import __version__
from telehealth.fhir.operations import OPERATION_DEFINITIONS
from telehealth.fhir.search import INCLUDES
from telehealth.fhir.search_params import SEARCH_PARAMS
from telehealth.fhir.service import CREATE_ONLY_TYPES, WRITABLE_TYPES

FHIR_VERSION = "4.3.0"
SMART_SCOPES = [f"system/{t}.{p}" for t in [*sorted(SEARCH_PARAMS), "*"] for p in ("rs", "cruds")]
_COMMON_SEARCH = [
    {"name": "_id", "type": "token", "documentation": "logical id"},
    {"name": "_lastUpdated", "type": "date", "documentation": "eq ge gt le lt"},
]
_CAPABILITY_DATE = "2026-11-24"


def _resource(resource_type: str) -> dict[str, Any]:
    reads = ["read", "vread", "history-instance", "history-type", "search-type"]
    writes = (
        ["create"]
        if resource_type in CREATE_ONLY_TYPES
        else ["create", "update", "patch"]
        if resource_type in WRITABLE_TYPES
        else []
    )
    params = [
        {"name": p.name, "type": p.kind, "documentation": p.documentation}
        for p in SEARCH_PARAMS[resource_type].values()
    ]
    entry: dict[str, Any] = {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in [*reads, *writes]],
        "versioning": "versioned-update" if writes else "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": bool(writes),
        "conditionalRead": "not-supported",
        "conditionalUpdate": "update" in writes,
        "conditionalDelete": "not-supported",
        "searchInclude": [f"{resource_type}:{p}" for p in INCLUDES.get(resource_type, ())],
        "searchRevInclude": [
            f"{source}:{p}"
            for source, ps in INCLUDES.items()
            for p in ps
            if SEARCH_PARAMS[source][p].target == resource_type
        ],
        "searchParam": [*params, *_COMMON_SEARCH],
        "operation": [
            {"name": d["code"], "definition": d["url"]}
            for d in OPERATION_DEFINITIONS.values()
            if resource_type in d["resource"]
        ],
    }
    return {key: value for key, value in entry.items() if value != []}


def capability_statement(base: str) -> dict[str, Any]:
    token = base.removesuffix("/fhir") + "/api/auth/token"
    return {
        "resourceType": "CapabilityStatement",
        "id": "telehealth",
        "status": "active",
        "date": _CAPABILITY_DATE,
        "publisher": "Telehealth",
        "kind": "instance",
        "software": {"name": "telehealth", "version": __version__},
        "implementation": {"description": "Telehealth FHIR R4 API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/merge-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth 2.0 client credentials with SMART system scopes "
                    "(system/Patient.rs ...), or a user's bearer token.",
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": token}],
                        }
                    ],
                },
                "resource": [
                    *[_resource(t) for t in sorted(SEARCH_PARAMS)],
                    {
                        "type": "Binary",
                        "interaction": [{"code": "read"}],
                        "documentation": "the bytes of attachments and recordings (their "
                        "DocumentReference), natively or as FHIR JSON",
                    },
                    {
                        "type": "AuditEvent",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "date", "type": "date"},
                            {"name": "outcome", "type": "token"},
                        ],
                    },
                ],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }


def smart_configuration(base: str) -> dict[str, Any]:
    root = base.removesuffix("/fhir")
    return {
        "issuer": root,
        "token_endpoint": f"{root}/api/auth/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": SMART_SCOPES,
        "capabilities": ["client-confidential-symmetric", "permission-v2", "permission-v1"],
    }
