"""OperationOutcome bodies for every error under /fhir."""

from __future__ import annotations

from typing import Any

from telehealth.errors import FieldProblem

FHIR_JSON = "application/fhir+json"

_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}


def operation_outcome(
    status: int, detail: str, problems: tuple[FieldProblem, ...] = ()
) -> dict[str, Any]:
    code = _ISSUE_CODE.get(status, "exception")
    severity = "error" if status < 500 else "fatal"
    issues: list[dict[str, Any]] = [
        {
            "severity": severity,
            "code": code,
            "diagnostics": f"{p.field}: {p.message}",
            "expression": [p.field],
        }
        for p in problems
    ]
    if not issues:
        issues.append({"severity": severity, "code": code, "diagnostics": detail})
    return {"resourceType": "OperationOutcome", "issue": issues}
