"""schemathesis against the running service's OpenAPI (/api and /health): whatever it sends,
never a 5xx, and every answer is one the OpenAPI documents.

Every operation is fuzzed with data that fits the schema and data that does not, as a
requesting doctor and as an administrator, on SQLite and PostgreSQL. Bounded: a few examples
per operation and mode, so the whole run stays around a minute per backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e import cli_support
from tests.e2e.cli_support import Served
from tests.helpers import login_tokens

served = cli_support.served  # the fixture, bound here (see cli_support)

EXAMPLES = int(os.environ.get("TELEHEALTH_FUZZ_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _token(url: str, username: str) -> str:
    """A full session's token, through the second factor (and its enrolment) where the role
    needs one: a session that may only enrol would leave most operations unfuzzed."""

    async def signed_in() -> str:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return str((await login_tokens(client, username))["access_token"])

    return asyncio.run(signed_in())


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    token: str,
    base_url: str,
    http: requests.Session,
    where: str,
) -> tuple[int, list[str]]:
    """Send a bounded number of generated requests; return how many and what went wrong."""
    calls = 0
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=os.environ.get("TELEHEALTH_FUZZ_RANDOM") != "1",
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=base_url, session=http, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as failure:
            failures.append(f"{where}: {type(failure).__name__}: {str(failure)[:600]}")

    with contextlib.suppress(Unsatisfiable):  # nothing to get wrong (no parameters, no body)
        exercise()
    return calls, failures


@pytest.mark.slow
def test_no_request_makes_the_service_fail(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/schema/openapi.json")
    tokens = {user: _token(served.url, user) for user in ("bs.xa1", "quantri")}
    failures: list[str] = []
    calls = 0
    http = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(("/api/", "/health")):
            continue  # /fhir has its own conventions (OperationOutcome) and tests
        for user, token in tokens.items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                where = f"{operation.label} as {user} ({mode.value})"
                sent, found = _fuzz(operation, mode, token, served.url, http, where)
                calls += sent
                failures += found
    assert calls > 100
    assert not failures, "\n\n".join(failures[:20])
