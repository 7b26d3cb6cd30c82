"""Writes of resources with values of the wrong JSON type: a 4xx OperationOutcome naming the
element, nothing stored (never a 500). These shapes made the validator raise before
(tests/validation/test_hostile_inputs.py mutates every fixture so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.router import FhirRouter
from reko_fhir.store import Partitions
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.validation.service import ValidationService, reko_definitions

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
UNIT = "SE2321000016-VC01"
Json = dict[str, Any]


def _fixture(name: str) -> Json:
    resource: Json = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return resource


def _consent_with_a_list_as_code() -> Json:
    consent = _fixture("valid/consent-category.json")
    consent["category"][0]["coding"][0]["code"] = {"no": "code"}  # unhashable: raised
    return consent


def _consent_with_a_coding_as_text() -> Json:
    consent = _fixture("valid/consent-category.json")
    consent["category"][0]["coding"] = [5]  # raised in the binding: no Coding to look into
    return consent


def _consent_with_a_meta_as_list() -> Json:
    consent = _fixture("valid/consent-category.json")
    consent["meta"] = [consent["meta"]]  # raised choosing its profiles
    return consent


def _case_with_a_wrong_code() -> Json:
    bundle: Json = _fixture("mapping/a-primary-care/expected.json")
    procedure = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Procedure")
    procedure["resource"]["code"]["coding"][0]["code"] = {"code": "GC001"}  # in a transaction too
    return bundle


@pytest.fixture(scope="module")
def validation() -> ValidationService:
    return ValidationService(reko_definitions())


@pytest.fixture
def store() -> MemoryRepository:
    return MemoryRepository(Partitions.of_unit(UNIT))


@pytest.mark.parametrize(
    ("method", "path", "make", "where"),
    [
        ("POST", "/Consent", _consent_with_a_list_as_code, "Consent.category[0].coding[0].code"),
        ("POST", "/Consent", _consent_with_a_coding_as_text, "Consent.category[0].coding[0]"),
        ("POST", "/Consent", _consent_with_a_meta_as_list, "Consent.meta"),
        ("POST", "/", _case_with_a_wrong_code, ".code.coding[0].code"),
    ],
)
async def test_a_wrongly_typed_value_is_a_4xx_outcome_and_nothing_is_stored(
    store: MemoryRepository,
    validation: ValidationService,
    method: str,
    path: str,
    make: Any,
    where: str,
) -> None:
    resource = make()
    answer = await FhirRouter(store, validation).handle(FhirRequest(method, path), resource)

    assert 400 <= answer.status < 500, answer.resource
    assert answer.resource is not None
    assert answer.resource["resourceType"] == "OperationOutcome"
    issues = answer.resource["issue"]
    assert all(i["severity"] and i["code"] and i.get("diagnostics") for i in issues), issues
    expressions = [e for i in issues for e in i.get("expression", [])]
    assert any(e.endswith(where) for e in expressions), expressions
    assert not store.data.versions
