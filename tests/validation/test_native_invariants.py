"""The invariants decided in Python (validation/native.py) give fhirpathpy's verdicts.

Wherever a native check decides (True or False), fhirpathpy's evaluation of the same expression
on the same node gives exactly ``[verdict]`` (or ``[]`` where that holds: per-1, ref-1; see
agreement.py); where fhirpathpy raises, the check does not decide.
Compared on every (invariant, node) the validator evaluates for the fixtures (valid, invalid,
warnings, the mapped Bundles, the HL7 conformance cases), on targeted edge cases, and on
generated and mutated instances; and the validator's issues are the same with the native checks
switched off.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reko_fhir.outcomes import Issue
from reko_fhir.validation import compiled
from reko_fhir.validation.definitions import CORE_BASE, Definitions
from reko_fhir.validation.native import native_check, native_invariants
from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.golden import CONFORMANCE_CASES, FIXTURES
from tests.validation.agreement import DATATYPE_EDGE_NODES, EXTENSION, assert_agree, date_times
from tests.validation.evaluations import evaluated as evaluations
from tests.validation.test_conformance import conformance_run

CASES = CONFORMANCE_CASES
INVARIANTS = native_invariants()
KEYS = [key for key, _ in INVARIANTS]


# -- fixtures ---------------------------------------------------------------------------------


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def fixture_resources() -> list[Any]:
    found = [
        pytest.param(load(path), id=f"{kind}/{path.stem}")
        for kind in ("valid", "invalid", "warnings")
        for path in sorted((FIXTURES / kind).glob("*.json"))
    ]
    for case in sorted(p for p in (FIXTURES / "mapping").iterdir() if p.is_dir()):
        bundle = load(case / "expected.json")
        found.append(pytest.param(bundle, id=f"mapping/{case.name}"))
        found += [
            pytest.param(e["resource"], id=f"mapping/{case.name}/{i}")
            for i, e in enumerate(bundle["entry"])
        ]
    return found


def conformance_cases() -> list[Any]:
    if not CASES.is_dir():
        return []
    return [pytest.param(folder, id=folder.name) for folder in sorted(CASES.iterdir())]


SERVICE = ValidationService(reko_definitions())


def evaluated(validate: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every (constraint, node, %resource, %rootResource) with a native check ``validate`` meets."""
    return [e[:4] for e in evaluations(validate, monkeypatch, lambda c: c.native is not None)]


@pytest.mark.parametrize("resource", fixture_resources())
def test_native_and_fhirpath_agree_on_every_fixture_node(
    resource: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = evaluated(lambda: SERVICE.validate(resource), monkeypatch)
    assert seen, "the fixture meets native invariants"
    for constraint, node, context, root in seen:
        verdict = assert_agree(constraint.key, constraint.expression, node, context, root)
        # Left to fhirpathpy here: dom-3 on a resource with contained resources, ref-1 on a
        # local reference (#goal-1).
        if verdict is None:
            assert constraint.key in ("dom-3", "ref-1"), (constraint.key, node)
            assert node.get("contained") or node["reference"].startswith("#"), node


@pytest.mark.parametrize("folder", conformance_cases())
def test_native_and_fhirpath_agree_on_the_hl7_conformance_cases(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator, instance, url = conformance_run(folder)
    for constraint, node, context, root in evaluated(
        lambda: validator.validate(instance, url), monkeypatch
    ):
        assert_agree(constraint.key, constraint.expression, node, context, root)


def every_issue(monkeypatch: pytest.MonkeyPatch, *, native: bool) -> list[list[Issue]]:
    """The validator's issues for every fixture and conformance case, rules compiled afresh."""
    if not native:
        monkeypatch.setattr(compiled, "native_check", lambda key, expression: None)
    service = ValidationService(reko_definitions())
    procedure = service.validator.rule(CORE_BASE + "Procedure")
    assert procedure is not None
    assert [c.native is not None for c in procedure.constraints if c.key == "dom-2"] == [native]
    found = [service.validate(p.values[0]) for p in fixture_resources()]
    for param in conformance_cases():
        validator, instance, url = conformance_run(param.values[0])
        found.append(validator.validate(instance, url))
    monkeypatch.undo()
    return found


def test_the_validator_gives_the_same_issues_without_the_native_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_native = every_issue(monkeypatch, native=True)
    assert any("dom-6" in i.diagnostics for issues in with_native for i in issues)
    assert every_issue(monkeypatch, native=False) == with_native


def test_every_native_invariant_is_one_the_core_carries() -> None:
    """A typo in an expression would make its check dead: each is found as the core has it."""
    core = {
        (c["key"], c["expression"])
        for structure in Definitions.core().structures.values()
        for element in structure.get("snapshot", {}).get("element", [])
        for c in element.get("constraint", [])
        if "expression" in c
    }
    assert set(INVARIANTS) <= core
    assert len(set(KEYS)) == len(KEYS), "one expression per key"


def test_another_expression_under_a_native_key_goes_to_fhirpath() -> None:
    # dom-3 as a conformance case's profile words it (it differs from R4's): not native.
    variant = (
        "contained.where(((id.exists() and ('#'+id in (%resource.descendants().reference"
        " | %resource.descendants().as(canonical) | %resource.descendants().as(uri)"
        " | %resource.descendants().as(url)))) or descendants().where(reference = '#').exists()"
        " or descendants().where(as(canonical) = '#').exists()"
        " or descendants().where(as(uri) = '#').exists()).not()).trace('unmatched', id).empty()"
    )
    assert native_check("dom-3", variant) is None
    assert native_check("dom-6", "text.div.exists()") is None
    assert native_check("ele-1", "hasValue() or (children().count() > id.count())") is None
    rule = compiled.compile_snapshot(
        [
            {
                "id": "Patient",
                "path": "Patient",
                "constraint": [
                    {"key": "dom-6", "severity": "warning", "expression": "text.div.exists()"},
                    {"key": "dom-5", "expression": "contained.meta.security.empty()"},
                ],
            }
        ]
    )
    assert [c.native is None for c in rule.constraints] == [True, False]


# -- edge cases -------------------------------------------------------------------------------

EDGE_NODES: list[Any] = [
    {},
    {"resourceType": "Patient"},
    {"contained": []},
    {"contained": None},
    {"contained": {}},
    {"contained": [{}]},
    {"contained": [None]},
    {"contained": "x"},
    {"_contained": EXTENSION},
    {"contained": [{"resourceType": "Patient", "id": "p"}]},
    {"contained": [{"resourceType": "Patient", "contained": []}]},
    {"contained": [{"resourceType": "Patient", "contained": [{"resourceType": "Patient"}]}]},
    {"contained": [{"resourceType": "Patient", "contained": {"resourceType": "Patient"}}]},
    {"contained": [{"resourceType": "Patient", "meta": {}}]},
    {"contained": [{"resourceType": "Patient", "meta": {"versionId": "1"}}]},
    {"contained": [{"resourceType": "Patient", "meta": {"_versionId": EXTENSION}}]},
    {"contained": [{"meta": {"lastUpdated": "2024-01-01T00:00:00Z"}}]},
    {"contained": [{"meta": [{"lastUpdated": ""}, {}]}]},
    {"contained": [{"meta": {"security": []}}]},
    {"contained": [{"meta": {"security": [{}]}}]},
    {"contained": [{"meta": {"security": [None]}}]},
    {"contained": [{"meta": {"security": {"code": "R"}}}]},
    {"text": {}},
    {"text": None},
    {"text": "x"},
    {"text": []},
    {"text": {"status": "generated"}},
    {"text": {"div": ""}},
    {"text": {"div": None}},
    {"text": {"div": []}},
    {"text": {"div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}},
    {"text": {"_div": EXTENSION}},
    {"text": [{"div": "<div/>"}, {}]},
    {"_text": {"div": "<div/>"}},
    {"detail": {}},
    {"reference": {}},
    {"detail": {}, "reference": {"reference": "Patient/1"}},
    {"detail": [], "reference": {}},
    {"detail": None, "reference": {}},
    {"detail": {"kind": "Task"}, "_reference": EXTENSION},
    {"identifier": []},
    {"identifier": [{}]},
    {"name": ""},
    {"name": "Vårdcentralen"},
    {"_name": EXTENSION},
    {"name": "x", "_name": EXTENSION},
    {"name": None, "identifier": None},
    {"resourceType": "ImplementationGuide.definition.page", "name": "x"},
    {"resourceType": "Goal.target", "detail": {}, "reference": {}},
    {"policy": []},
    {"policy": [{"uri": "x"}]},
    {"policyRule": {}},
    {"_policy": EXTENSION},
    {"patient": {"reference": "Patient/1"}},
    {"scope": {"coding": [{"system": "something", "code": "patient-privacy"}]}},
    {"scope": {"coding": [{"system": "something", "code": "research"}]}},
    {"scope": {"coding": [{"system": "something", "code": "adr"}, {"code": "treatment"}]}},
    {
        "scope": {
            "coding": [{"system": "x", "code": "x"}, {"system": "something", "code": "treatment"}]
        }
    },
    {"scope": {"coding": [{"system": "something", "code": "treatment"}]}, "patient": {}},
    {"scope": {"coding": [{"system": "Something", "code": "treatment"}]}},
    {"scope": {"coding": [{"system": "something ", "code": "adr"}]}},
    {"scope": {"coding": [{"system": "something", "code": "adr", "_code": EXTENSION}]}},
    {"scope": {"coding": [{"system": "something", "_code": EXTENSION}]}},
    {"scope": {"coding": [{"system": 1, "code": "adr"}]}},
    {"scope": {"coding": [{"system": ["something"], "code": "adr"}]}},
    {"scope": {"coding": [{"system": ["something", "x"], "code": "adr"}]}},
    {
        "scope": {
            "coding": [{"resourceType": "DeviceRequest", "system": "something", "code": "adr"}]
        }
    },
    {"scope": [{"coding": {"system": "something", "code": "research"}}, {}]},
    {"scope": {"coding": ["something"]}},
    {"scope": {"coding": [None, []]}},
    {"resource": {}},
    {"request": {"method": "POST"}},
    {"response": None, "request": []},
    {"fullUrl": "urn:uuid:1"},
    {"fullUrl": "http://a/fhir/Patient/1/_history/2"},
    {"fullUrl": ""},
    {"fullUrl": 1},
    {"fullUrl": ["a", "b"]},
    {"fullUrl": ["http://a/Patient/1/_history/1"]},
    {"_fullUrl": EXTENSION},
    {"fullUrl": "urn:uuid:1", "_fullUrl": EXTENSION},
    "x",
    None,
    [],
    [{}],
    1,
    *DATATYPE_EDGE_NODES,
]


@pytest.mark.parametrize(("key", "expression"), INVARIANTS, ids=KEYS)
def test_native_and_fhirpath_agree_on_edge_cases(key: str, expression: str) -> None:
    verdicts = [assert_agree(key, expression, node) for node in EDGE_NODES]
    # dom-3 and ref-1 decide only where they hold: what could fail needs %resource.
    assert {True, False} <= set(verdicts) or key in ("dom-3", "ref-1"), "both verdicts reached"


@pytest.mark.parametrize(
    ("key", "node", "verdict"),
    [
        ("dom-2", {"contained": [{"resourceType": "Patient", "contained": [{}]}]}, False),
        ("dom-3", {"resourceType": "Patient"}, True),
        ("dom-3", {"contained": [{"resourceType": "Patient", "id": "p"}]}, None),
        ("dom-4", {"contained": [{"meta": {"_versionId": EXTENSION}}]}, False),
        ("dom-5", {"contained": [{"meta": {"security": [{}]}}]}, False),
        ("dom-6", {"text": {"status": "generated"}}, False),
        ("dom-6", {"text": {"div": ""}}, True),
        ("dom-6", {"text": {"_div": EXTENSION}}, True),
        ("cpl-3", {"detail": {}, "reference": {}}, False),
        ("org-1", {"_name": EXTENSION}, True),
        ("org-1", {"identifier": []}, False),
        ("ppc-1", {"policyRule": {}}, True),
        (
            "ppc-2",
            {"scope": {"coding": [{"system": "something", "code": "patient-privacy"}]}},
            False,
        ),
        ("ppc-2", {"scope": {"coding": [{"system": 1, "code": "x"}]}, "patient": {}}, None),
        ("bdl-5", {"fullUrl": "urn:uuid:1"}, False),
        ("bdl-8", {"fullUrl": "http://a/fhir/Patient/1/_history/2"}, False),
        ("bdl-8", {"fullUrl": "urn:uuid:1", "_fullUrl": EXTENSION}, None),
        ("org-1", {"resourceType": "ImplementationGuide.definition.page", "name": "x"}, None),
    ],
)
def test_what_the_native_checks_decide(key: str, node: Any, verdict: bool | None) -> None:
    assert assert_agree(key, dict(INVARIANTS)[key], node) is verdict


# -- generated and mutated instances ----------------------------------------------------------

NAMES = [
    *["contained", "meta", "versionId", "lastUpdated", "security", "text", "div", "detail"],
    *["reference", "identifier", "name", "policy", "policyRule", "patient", "scope", "coding"],
    *["system", "code", "resource", "request", "response", "fullUrl"],
    *["start", "end", "value", "display"],
]
STRINGS = [
    *["", "x", "something", "Something", "patient-privacy", "research", "adr", "treatment"],
    *["#p", "http://a/fhir/Patient/1/_history/2", "<div/>", "Patient", "Consent"],
    *["DeviceRequest", "Goal.target"],
    *["2024", "2024-05", "2024-05-01", "2024-05-01T00:30:00+01:00", "2024-04-30T23:30:00Z"],
]
leaves = st.none() | st.booleans() | st.integers(-1, 2) | st.sampled_from(STRINGS)
keys = st.sampled_from(NAMES + ["_" + n for n in NAMES] + ["resourceType", "id", "url"])
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


extension = st.just(EXTENSION) | json_values
coding = optional(
    system=st.sampled_from(["something", "x", ""]) | leaves,
    code=st.sampled_from(["patient-privacy", "research", "adr", "treatment"]) | leaves,
    _system=extension,
    _code=extension,
    resourceType=st.sampled_from(["DeviceRequest", "Coding"]),
)
meta = optional(
    versionId=st.just("1") | leaves,
    _versionId=extension,
    lastUpdated=leaves,
    security=st.lists(json_values, max_size=2) | json_values,
)
contained = optional(
    resourceType=st.sampled_from(["Patient", "Organization", ""]),
    id=st.just("p"),
    meta=meta | st.lists(meta, max_size=2),
    contained=st.lists(optional(resourceType=st.just("Patient")), max_size=2) | json_values,
)
shaped = optional(
    resourceType=st.sampled_from(["Consent", "CarePlan", "Organization", "DeviceRequest"]),
    contained=st.lists(contained, max_size=3) | contained | json_values,
    text=optional(div=st.just("<div/>") | leaves, _div=extension, status=leaves) | json_values,
    detail=json_values,
    reference=json_values,
    _reference=extension,
    identifier=st.lists(json_values, max_size=2) | json_values,
    name=leaves,
    _name=extension,
    policy=json_values,
    policyRule=json_values,
    patient=json_values,
    scope=optional(coding=st.lists(coding, max_size=3) | coding) | json_values,
    resource=json_values,
    request=json_values,
    response=json_values,
    fullUrl=st.sampled_from(STRINGS) | leaves | st.lists(leaves, max_size=2),
    _fullUrl=extension,
)

# Instances aimed at the rarer verdicts: a Consent without a patient whose scope names
# 'something', an entry whose fullUrl is a version.
consent = optional(
    patient=st.just({"reference": "Patient/1"}) | json_values,
    scope=st.fixed_dictionaries(
        {},
        optional={
            "coding": st.lists(
                st.fixed_dictionaries(
                    {
                        "system": st.sampled_from(["something", "x"]),
                        "code": st.sampled_from(STRINGS[4:8]),
                    }
                )
                | coding,
                max_size=3,
            )
        },
    ),
)
entry = optional(
    fullUrl=st.sampled_from(STRINGS),
    _fullUrl=extension,
    resource=json_values,
    request=json_values,
    response=json_values,
)
# Periods: dateTimes aimed at per-1's comparisons (agreement.py), or anything.
period = optional(
    start=date_times | leaves, end=date_times | leaves, _start=extension, _end=extension
)
instances = (
    shaped | consent | entry | period | st.dictionaries(keys, json_values, max_size=5) | json_values
)

EVIDENCE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EVIDENCE
@given(node=instances)
def test_native_and_fhirpath_agree_on_generated_instances(node: Any) -> None:
    for key, expression in INVARIANTS:
        assert_agree(key, expression, node)


def dict_nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from dict_nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from dict_nodes(item)


BASES = [
    p.values[0]
    for p in fixture_resources()
    if isinstance(p.values[0], dict) and p.values[0].get("resourceType") != "Bundle"
]


@EVIDENCE
@given(
    base=st.sampled_from(BASES),
    mutations=st.lists(
        st.tuples(st.integers(0, 10_000), keys, json_values | shaped), min_size=1, max_size=3
    ),
)
def test_native_and_fhirpath_agree_on_mutated_fixtures(
    base: dict[str, Any], mutations: list[tuple[int, str, Any]]
) -> None:
    resource = copy.deepcopy(base)
    touched = [resource]
    for index, key, value in mutations:
        nodes = list(dict_nodes(resource))
        node = nodes[index % len(nodes)]
        node[key] = copy.deepcopy(value)  # shared values (st.just) must not grow cycles
        touched.append(node)
    for node in touched:
        for key, expression in INVARIANTS:
            assert_agree(key, expression, node, resource)
