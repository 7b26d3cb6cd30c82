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
from reko_fhir.validation.service import ValidationService
from tests.rest.conftest import UNIT
from tests.validation.mutants import mutants

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SEED = 7  # fixed: the same mutants on every run
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


def _procedure_with_a_list_as_subject() -> Json:
    procedure = _fixture("valid/procedure-performer.json")
    procedure["subject"] = [procedure["subject"]]  # raised reading the consent rules' patient
    return procedure


def _procedure_with_an_object_as_performer() -> Json:
    procedure = _fixture("valid/procedure-performer.json")
    procedure["performer"] = {"actor": {"reference": "PractitionerRole/x"}}  # raised: .get
    return procedure


def _procedure_with_a_list_as_actor_reference() -> Json:
    procedure = _fixture("valid/procedure-performer.json")
    procedure["performer"] = [{"actor": {"reference": ["PractitionerRole/x"]}}]  # unhashable
    return procedure


def _case_with_a_number_as_full_url() -> Json:
    bundle: Json = _fixture("mapping/a-primary-care/expected.json")
    bundle["entry"][0]["fullUrl"] = 1  # was "rewritten" wherever a 1 stood in the text
    return bundle


@pytest.mark.parametrize(
    ("method", "path", "make", "where"),
    [
        ("POST", "/Consent", _consent_with_a_list_as_code, "Consent.category[0].coding[0].code"),
        ("POST", "/Consent", _consent_with_a_coding_as_text, "Consent.category[0].coding[0]"),
        ("POST", "/Consent", _consent_with_a_meta_as_list, "Consent.meta"),
        ("POST", "/", _case_with_a_wrong_code, ".code.coding[0].code"),
        ("POST", "/Procedure", _procedure_with_a_list_as_subject, "Procedure.subject"),
        ("POST", "/Procedure", _procedure_with_an_object_as_performer, "Procedure.performer"),
        (
            "POST",
            "/Procedure",
            _procedure_with_a_list_as_actor_reference,
            "Procedure.performer[0].actor.reference",
        ),
        ("POST", "/", _case_with_a_number_as_full_url, "Bundle.entry[0].fullUrl"),
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


WRITABLE_ALONE = {
    "CarePlan",
    "CareTeam",
    "Communication",
    "Consent",
    "EpisodeOfCare",
    "Organization",
    "Patient",
    "PractitionerRole",
    "Procedure",
    "Task",
}


async def test_no_mutant_of_a_fixture_is_answered_with_a_500(validation: ValidationService) -> None:
    """Every seeded mutant of every fixture (tests/validation/mutants.py), written as a create
    (a Bundle as a transaction): an answer below 500, an OperationOutcome for every refusal. The
    validator alone raised on none of them; the consent rules and the Bundle's rewrite of its
    fullUrls, which run around it, raised on 24 of 784."""
    raised: list[str] = []
    for name, resource in mutants(SEED):
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if kind == "Bundle":
            path = "/"
        elif kind in WRITABLE_ALONE:
            path = f"/{kind}"
            resource.pop("id", None)
        else:
            continue
        store = MemoryRepository(Partitions.of_unit(UNIT))
        answer = await FhirRouter(store, validation).handle(FhirRequest("POST", path), resource)
        if answer.status >= 500:
            raised.append(f"{name}: {answer.status}")
        elif answer.status >= 400:
            assert answer.resource is not None
            assert answer.resource["resourceType"] == "OperationOutcome", name
    assert not raised, raised
