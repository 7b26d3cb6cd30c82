"""Schemathesis against the real service on loopback: no request it can generate gets a 5xx.

The schema is :func:`reko_fhir.api.openapi.openapi_document` (the one ``GET /openapi.json``
serves); every operation in it gets a bounded, deterministic set of generated requests (its
explicit and coverage cases plus ``MAX_EXAMPLES`` fuzzed ones), sent with a bearer token for a
care unit holding every scope. The only check is ``not_a_server_error``: a 4xx for nonsense is
right, a 5xx is a bug. A failure names the request (as curl) and carries the server log's lines
for it, the traceback included. https://schemathesis.readthedocs.io/
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from reko_fhir.api.openapi import openapi_document
from tests.security.conftest import Service

MAX_EXAMPLES = 20
SEED = 20261122
LOG_TAIL = 6000
SEED_BUNDLE = Path(__file__).parents[2] / "fixtures/mapping/a-primary-care/expected.json"
SEEDED_UNIT = "SE2321000016-VC01"
ACCESS = '"logger": "reko_fhir.access"'

# Loaded at import, so each operation is a test of its own; the server's address and token
# are only known once the ``service`` fixture runs, and are given to each call.
# (schemathesis.pytest.from_fixture would take them from a fixture, but its lazy loader sets
# ``Function._nodeid``, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_dict(
    openapi_document(),
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "cache": {"enabled": False},  # nothing of a past run (or another machine) is replayed
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,  # the service's token, not generated ones
            },
            "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
            "phases": {
                "stateful": {"enabled": False},
                "coverage": {"generation": {"mode": "positive"}},
            },
        }
    ),
)


@pytest.fixture(scope="module")
def bearer(service: Service) -> dict[str, str]:
    """A token with every scope for the care unit of a stored case (the mapping fixture's
    primary care centre), so searches, ``_include`` and ``_summary`` run over real rows."""
    headers = service.headers(unit=SEEDED_UNIT)
    seeded = httpx.post(f"{service.base}/", content=SEED_BUNDLE.read_bytes(), headers=headers)
    assert seeded.status_code == 200, seeded.text
    return {"authorization": headers["authorization"]}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_gets_a_server_error(
    case: Any, service: Service, bearer: dict[str, str]
) -> None:
    public = case.operation.definition.raw.get("security") == []
    seen = service.log.stat().st_size
    try:
        case.call_and_validate(
            base_url=service.base,
            headers=None if public else bearer,
            checks=[not_a_server_error],
            timeout=30,
        )
    except FailureGroup as failure:
        # schemathesis drops notes from its own failures: the server's side travels in a
        # plain assertion, chained to the failure (which shows the request as curl).
        raise AssertionError(f"{failure}\n\n{server_side(service, seen)}") from failure


def server_side(service: Service, start: int) -> str:
    """What the server logged since ``start`` (its tracebacks), the access lines left out.
    An exception that escaped the app is logged just after its 500 is sent: wait for it."""
    lines: list[str] = []
    for _ in range(30):
        with service.log.open("rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", errors="replace")
        lines = [line for line in text.splitlines() if ACCESS not in line]
        if lines:
            break
        time.sleep(0.1)
    return f"server log ({service.log}):\n" + "\n".join(lines)[-LOG_TAIL:]


def test_the_service_serves_this_document(service: Service) -> None:
    """``GET /openapi.json`` is this document (app.py installs it), not FastAPI's own."""
    answer = httpx.get(f"{service.base}/openapi.json", headers=service.headers(), timeout=10)
    assert answer.status_code == 200
    assert answer.json() == openapi_document()
