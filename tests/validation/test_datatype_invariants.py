"""The invariants of a data type hold on every element of that type; ext-1 on every extension.

per-1 on a Period wherever it stands (EpisodeOfCare.period, Consent.provision.period,
Procedure.performedPeriod), ref-1 on a Reference, att-1, qty-3 …; and ext-1: an extension has
nested extensions or a value, not both and not neither (validation/datatypes.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from reko_fhir.validation.datatypes import EXT_1, ext_1_holds
from reko_fhir.validation.definitions import CORE_BASE, Definitions
from reko_fhir.validation.service import ValidationService, reko_definitions
from reko_fhir.validation.validator import Validator
from tests.golden import FIXTURES

SERVICE = ValidationService(reko_definitions())
VALIDATOR = SERVICE.validator
CORE = Validator(Definitions.core())
GOLDEN_B = json.loads(
    (FIXTURES / "mapping" / "b-psychiatry-revoked-consent" / "expected.json").read_text(
        encoding="utf-8"
    )
)
PER_1 = "per-1: If present, start SHALL have a lower value than end"
REF_1 = "ref-1: SHALL have a contained resource if a local reference is provided"
Json = dict[str, Any]


def golden(kind: str, where: Callable[[Json], bool] = lambda r: True) -> Json:
    """A deep copy of the first resource of ``kind`` in golden case B that ``where`` picks."""
    found = (e["resource"] for e in GOLDEN_B["entry"] if e["resource"]["resourceType"] == kind)
    return copy.deepcopy(next(r for r in found if where(r)))


def issues(resource: Json, validator: Validator = VALIDATOR) -> list[tuple[str, str, str | None]]:
    """(severity, diagnostics, expression) against the resource's reko profile (else its type)."""
    profile = (resource.get("meta") or {}).get("profile", [None])[0]
    found = validator.validate(resource, profile)
    return [(i.severity.value, i.diagnostics, i.expression) for i in found]


def invariant(resource: Json, key: str, validator: Validator = VALIDATOR) -> list[Any]:
    return [i for i in issues(resource, validator) if i[1].startswith(f"{key}:")]


def with_period(kind: str, period: Json) -> tuple[Json, str]:
    """A golden resource of ``kind`` whose Period is ``period``, and that Period's FHIRPath."""
    resource = golden(kind)
    if kind == "EpisodeOfCare":
        resource["period"] = period
        return resource, "EpisodeOfCare.period"
    if kind == "Consent":
        resource["provision"]["period"] = period
        return resource, "Consent.provision.period"
    del resource["performedDateTime"]
    resource["performedPeriod"] = period
    return resource, "Procedure.performedPeriod"


PLACES = ["EpisodeOfCare", "Consent", "Procedure"]


@pytest.mark.parametrize("kind", PLACES)
def test_a_golden_period_holds(kind: str) -> None:
    resource, _ = with_period(kind, {"start": "2025-03-12", "end": "2025-04-22"})
    assert [i for i in issues(resource) if i[0] == "error"] == []


@pytest.mark.parametrize("kind", PLACES)
def test_a_period_ending_before_it_starts_is_an_error_at_its_element(kind: str) -> None:
    resource, path = with_period(kind, {"start": "2025-03-12", "end": "2025-03-10"})
    assert invariant(resource, "per-1") == [("error", PER_1, path)]


def test_per_1_in_a_bundle_names_the_entry() -> None:
    bundle = copy.deepcopy(GOLDEN_B)
    index, entry = next(
        (i, e)
        for i, e in enumerate(bundle["entry"])
        if e["resource"]["resourceType"] == "EpisodeOfCare"
    )
    entry["resource"]["period"]["end"] = "2025-03-01"
    found = SERVICE.validate(bundle)
    assert [(i.diagnostics, i.expression) for i in found if i.diagnostics.startswith("per-1")] == [
        (PER_1, f"Bundle.entry[{index}].resource.period")
    ]


@pytest.mark.parametrize(
    "period",
    [
        {"start": "2025-03-10", "end": "2025-03-10"},  # equal
        {"start": "2025-03-10T10:00:00Z", "end": "2025-03-10T10:00:00.000Z"},  # equal
        {"start": "2025-03", "end": "2025-03-10"},  # the precisions differ: unknown, it holds
        {"start": "2025-03-10", "end": "2025-03"},  # (as strings, the start is later)
        {"start": "2025", "end": "2025-03-10T12:00:00+01:00"},
        {"start": "2025-03-10", "end": "2025-03-10T12:00:00+01:00"},
        {"start": "2025-03-10T10:00:00+02:00", "end": "2025-03-10T09:30:00+01:00"},  # 08:00Z
        {"start": "2025-03-10T23:30:00-01:00", "end": "2025-03-11"},  # 03-11T00:30Z
        {"start": "2025-03-10"},
        {"end": "2025-03-10"},
        {"_start": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}},
    ],
)
def test_a_period_that_holds(period: Json) -> None:
    resource, _ = with_period("EpisodeOfCare", period)
    assert invariant(resource, "per-1") == []


@pytest.mark.parametrize(
    "period",
    [
        {"start": "2025-03-10T09:30:00+01:00", "end": "2025-03-10T10:00:00+02:00"},  # 08:30Z
        {"start": "2025-03-10T10:00:00.5Z", "end": "2025-03-10T10:00:00Z"},
        {"start": "2025-04", "end": "2025-03-31"},
        {"start": "2026", "end": "2025-12-31T23:00:00Z"},
        {"start": "2025-03-10", "end": "2025-03-10T00:30:00+01:00"},  # 03-09T23:30Z
    ],
)
def test_a_period_that_does_not_hold(period: Json) -> None:
    resource, path = with_period("EpisodeOfCare", period)
    assert invariant(resource, "per-1") == [("error", PER_1, path)]


# -- ext-1 ------------------------------------------------------------------------------------


def with_external_actor(change: Callable[[Json], object]) -> Json:
    resource = golden("Procedure", lambda r: bool(r.get("extension")))
    change(resource["extension"][0])
    return resource


def test_an_extension_with_a_value_and_extensions_is_an_error() -> None:
    resource = with_external_actor(
        lambda e: e.update(extension=[{"url": "http://example.org/x", "valueString": "y"}])
    )
    assert invariant(resource, "ext-1") == [("error", EXT_1, "Procedure.extension[0]")]


def test_an_extension_with_neither_a_value_nor_extensions_is_an_error() -> None:
    resource = with_external_actor(lambda e: e.pop("valueReference"))
    assert invariant(resource, "ext-1") == [("error", EXT_1, "Procedure.extension[0]")]


def test_ext_1_holds_inside_a_complex_extension_too() -> None:
    episode = golden("EpisodeOfCare")
    index = next(i for i, e in enumerate(episode["extension"]) if "extension" in e)
    del episode["extension"][index]["extension"][0]["valueDate"]
    assert invariant(episode, "ext-1") == [
        ("error", EXT_1, f"EpisodeOfCare.extension[{index}].extension[0]")
    ]
    episode["extension"][index]["valueString"] = "x"  # a complex extension with a value
    assert ("error", EXT_1, f"EpisodeOfCare.extension[{index}]") in invariant(episode, "ext-1")


def test_a_modifier_extension_is_an_extension() -> None:
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": "Patient/1"},
        "modifierExtension": [{"url": "http://example.org/x"}],
    }
    assert invariant(procedure, "ext-1", CORE) == [
        ("error", EXT_1, "Procedure.modifierExtension[0]")
    ]


@pytest.mark.parametrize(
    ("extension", "holds"),
    [
        ({"url": "u", "valueString": "x"}, True),
        ({"url": "u", "_valueString": {"extension": [{"url": "v", "valueCode": "x"}]}}, True),
        ({"url": "u", "extension": [{"url": "v", "valueCode": "x"}]}, True),
        ({"url": "u"}, False),
        ({"url": "u", "extension": []}, False),
        ({"url": "u", "valueString": None}, False),
        ({"url": "u", "extension": [{}], "valueString": "x"}, False),
        ({"url": "u", "values": "x"}, False),  # no value[x]: an unknown element
    ],
)
def test_what_ext_1_says(extension: Json, holds: bool) -> None:
    assert ext_1_holds(extension) is holds


def test_ext_1_is_worded_as_the_core_words_it() -> None:
    structure = Definitions.core().structure(CORE_BASE + "Extension")
    assert structure is not None
    (ext_1,) = [c for c in structure["snapshot"]["element"][0]["constraint"] if c["key"] == "ext-1"]
    assert f"ext-1: {ext_1['human']}" == EXT_1
    assert ext_1["expression"] == "extension.exists() != value.exists()"


# -- ref-1 and the other data types -----------------------------------------------------------


def procedure(subject: Json, **more: Any) -> Json:
    return {"resourceType": "Procedure", "status": "completed", "subject": subject, **more}


PATIENT = {"resourceType": "Patient", "id": "p"}


@pytest.mark.parametrize(
    "resource",
    [
        procedure({"display": "Anna Andersson"}),
        procedure({"identifier": {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "x"}}),
        procedure({"reference": "Patient/1"}),
        procedure({"reference": "#p"}, contained=[PATIENT]),
        procedure({"reference": "#"}),  # the resource itself (the HL7 validator's R4 reading)
    ],
)
def test_a_reference_that_holds(resource: Json) -> None:
    assert invariant(resource, "ref-1", CORE) == []
    assert [i for i in issues(resource, CORE) if i[0] == "error"] == []


def test_a_local_reference_to_nothing_contained_is_an_error() -> None:
    resource = procedure({"reference": "#nope"}, contained=[PATIENT])
    assert invariant(resource, "ref-1", CORE) == [("error", REF_1, "Procedure.subject")]


def test_a_bundle_entry_is_its_own_root_resource() -> None:
    """%rootResource of an entry is the entry's resource, not the Bundle: its contained count."""

    def bundle(reference: str) -> Json:
        resource = procedure({"reference": reference}, contained=[PATIENT])
        entry = {"fullUrl": "urn:uuid:6f1c1c3e-3b43-4f4e-9f2a-1d6c1b1a0c01", "resource": resource}
        return {"resourceType": "Bundle", "type": "collection", "entry": [entry]}

    assert invariant(bundle("#p"), "ref-1", CORE) == []
    assert invariant(bundle("#nope"), "ref-1", CORE) == [
        ("error", REF_1, "Bundle.entry[0].resource.subject")
    ]


def test_a_contained_resource_has_its_container_as_root_resource() -> None:
    practitioner = {"resourceType": "Practitioner", "id": "d"}
    organization = {"resourceType": "Organization", "id": "o", "name": "x"}
    role = {
        "resourceType": "PractitionerRole",
        "id": "r",
        "practitioner": {"reference": "#d"},
        "organization": {"reference": "#nope"},
    }
    resource = procedure(
        {"reference": "Patient/1"},
        contained=[practitioner, organization, role],
        performer=[{"actor": {"reference": "#r"}}, {"actor": {"reference": "#o"}}],
    )
    assert invariant(resource, "ref-1", CORE) == [
        ("error", REF_1, "Procedure.contained[2].organization")
    ]


@pytest.mark.parametrize(
    ("resource", "key", "path"),
    [
        (  # att-1 through FHIRPath
            {
                "resourceType": "Communication",
                "status": "completed",
                "payload": [{"contentAttachment": {"data": "aGVq"}}],
            },
            "att-1",
            "Communication.payload[0].contentAttachment",
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "valueQuantity": {"value": 5, "code": "mg"},
            },
            "qty-3",
            "Observation.valueQuantity",
        ),
        (
            {
                "resourceType": "Organization",
                "name": "x",
                "telecom": [{"system": "phone", "value": "1"}, {"value": "08-123 456"}],
            },
            "cpt-2",
            "Organization.telecom[1]",
        ),
    ],
)
def test_other_data_type_invariants_hold_on_their_elements(
    resource: Json, key: str, path: str
) -> None:
    assert [(i[0], i[2]) for i in invariant(resource, key, CORE)] == [("error", path)]


def test_the_invariants_of_a_type_are_found_once_from_its_compiled_definition() -> None:
    validator = CORE
    period = validator.types.of("Period")
    assert [c.key for c in period] == ["per-1"]
    assert period[0].native is not None, "per-1 is decided in Python"
    assert validator.types.of("Period") is period
    rule = validator.rule(CORE_BASE + "Period")
    assert rule is not None
    assert period[0] is rule.constraints[0]
    assert [c.key for c in validator.types.of("Age")] == ["age-1", "qty-3"]
    assert [c.key for c in validator.types.of("Reference")] == ["ref-1"]
    for none in ("Extension", "BackboneElement", "Patient", "Resource", "string", "Coding"):
        assert validator.types.of(none) == (), none
