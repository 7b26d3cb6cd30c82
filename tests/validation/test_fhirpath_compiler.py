"""The FHIRPath compiler against fhirpathpy, its oracle, and the compiled validator against the
one without it.

- On every (invariant, node) the validator evaluates for the fixtures and the HL7 conformance
  cases, a compiled invariant that decides gives fhirpathpy's verdict wherever fhirpathpy
  decides (fhirpathpy evaluated alone, without native.py and fhirpath_gaps.py).
- The validator with compiled invariants gives the same issues (severity, code, expression,
  diagnostics, order) as the one evaluating them through fhirpathpy, on every file in
  fixtures/ and every conformance case (issue 15's acceptance).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.outcomes import Issue
from reko_fhir.validation.compiled import compiled_fhirpath
from reko_fhir.validation.fhirpath_compiler import Fallback, compile_invariant
from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.golden import CONFORMANCE_CASES, fhir_fixtures
from tests.validation.evaluations import evaluated as evaluations
from tests.validation.test_conformance import conformance_run

SERVICE = ValidationService(reko_definitions())
OLD = ValidationService(reko_definitions(), compiled=False)


def fixture_inputs() -> list[Any]:
    """Every resource in every readable FHIR file under fixtures/ (JSON, XML, NDJSON)."""
    return [pytest.param(resource, id=source) for source, resource in fhir_fixtures()]


FIXTURE_INPUTS = fixture_inputs()


def conformance_cases() -> list[Any]:
    return [pytest.param(p, id=p.name) for p in sorted(CONFORMANCE_CASES.iterdir()) if p.is_dir()]


def evaluated(validate: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every (constraint, node, %resource, %rootResource, options) with a compiled form."""
    return evaluations(validate, monkeypatch, lambda c: c.compiled is not None)


def agree(seen: list[Any]) -> int:
    """Checks every compiled verdict against fhirpathpy's; how many the compiled form decided."""
    decided = 0
    for constraint, node, resource, root, more in seen:
        assert constraint.compiled is not None
        try:
            result = constraint.compiled(node, resource, resource if root is None else root)
        except Fallback:
            continue
        oracle = dataclasses.replace(constraint, native=None, gap=None, compiled=None)
        expected = oracle.verdict(node, resource, root, **more)
        if isinstance(expected, bool):  # fhirpathpy decides
            assert (result != [False]) is expected, (constraint.key, constraint.expression, node)
            decided += 1
    return decided


@pytest.mark.parametrize("resource", FIXTURE_INPUTS)
def test_compiled_and_fhirpathpy_agree_on_every_fixture_node(
    resource: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    agree(evaluated(lambda: SERVICE.validate(resource), monkeypatch))


def test_the_compiled_forms_decide_on_the_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not everything falls back: the reko invariants, at least, are decided compiled."""
    seen = [
        s
        for p in FIXTURE_INPUTS
        for s in evaluated(lambda p=p: SERVICE.validate(p.values[0]), monkeypatch)
    ]
    assert agree(seen) > 100
    keys = {s[0].key for s in seen}
    assert {"reko-proc-1", "reko-proc-2", "reko-proc-3"} <= keys


@pytest.mark.parametrize("folder", conformance_cases())
def test_compiled_and_fhirpathpy_agree_on_the_hl7_conformance_cases(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator, instance, url = conformance_run(folder)
    agree(evaluated(lambda: validator.validate(instance, url), monkeypatch))


def as_rows(issues: list[Issue]) -> list[tuple[Any, ...]]:
    return [(i.severity, i.code, i.expression, i.diagnostics) for i in issues]


@pytest.mark.parametrize("resource", FIXTURE_INPUTS)
def test_the_compiled_validator_gives_the_same_issues_on_every_fixture(resource: Any) -> None:
    assert as_rows(SERVICE.validate(resource)) == as_rows(OLD.validate(resource))


@pytest.mark.parametrize("folder", conformance_cases())
def test_the_compiled_validator_gives_the_same_issues_on_every_conformance_case(
    folder: Path,
) -> None:
    validator, instance, url = conformance_run(folder)
    old, _, _ = conformance_run(folder, compiled=False)
    assert as_rows(validator.validate(instance, url)) == as_rows(old.validate(instance, url))


def test_every_reko_invariant_compiles() -> None:
    definitions = reko_definitions()
    expressions = [
        c["expression"]
        for url in ("RekoProcedure", "RekoCarePlan", "RekoConsent", "RekoEpisodeOfCare")
        for sd in [definitions.structure(f"http://reko-fhir.se/fhir/StructureDefinition/{url}")]
        for e in (sd or {})["snapshot"]["element"]
        for c in e.get("constraint", [])
        if c["key"].startswith("reko-")
    ]
    assert expressions
    assert [e for e in expressions if compile_invariant(e) is None] == []


# -- edge cases, each against fhirpathpy -------------------------------------------------------

EXTENSION = {"extension": [{"url": "http://example.org/e", "valueString": "x"}]}
EDGES: list[tuple[str, Any]] = [
    ("a.exists() and b.exists()", {"a": 1}),
    ("a.exists() and b", {"a": 1}),
    ("a and b", {"a": True, "b": False}),
    ("a or b", {"a": False}),
    ("a or b", {}),
    ("a xor b", {"a": True, "b": False}),
    ("a xor b", {"a": True}),
    ("a implies b", {"a": True}),
    ("a implies b", {"a": False}),
    ("a implies b", {"b": True}),
    ("a implies b", {"a": True, "b": False}),
    ("a.not()", {"a": True}),
    ("a.not()", {"a": [True, False]}),
    ("a = 'x'", {"a": "x"}),
    ("a = 'x'", {"a": "y"}),
    ("a != 'x'", {"a": "y"}),
    ("a = 'x'", {}),
    ("a = 1", {"a": 1}),
    ("a = true", {"a": True}),
    ("a.count() > 1", {"a": [1, 2]}),
    ("(a.count() + b.count()) > 0", {"b": "x"}),
    ("a.count() <= 1", {"a": [1, 2]}),
    ("a.where(b = 'x').exists()", {"a": [{"b": "y"}, {"b": "x"}]}),
    ("a.where(b = 'x').count() = 1", {"a": [{"b": "y"}, {}]}),
    ("a.exists(b = 'x')", {"a": [{"b": "y"}]}),
    ("a.all(b.exists())", {"a": [{"b": 1}, {}]}),
    ("a.all(b.exists())", {"a": []}),
    ("a.select(b).count() = 2", {"a": [{"b": 1}, {"b": [2, 3]}]}),
    ("a.first().b = 'x'", {"a": [{"b": "x"}, {"b": "y"}]}),
    ("a.tail().empty()", {"a": [1]}),
    ("a.startsWith('#')", {"a": "#x"}),
    ("a.startsWith('#')", {"a": ""}),
    ("a.contains('/_history/').not()", {"a": "x/_history/1"}),
    ("a.matches('^[0-9]+$')", {"a": "123"}),
    ("a.matches('^[0-9]+$')", {"a": "12x"}),
    ("`div`.exists()", {"div": "<div/>"}),
    ("%resource.a.exists()", {"a": 1}),
    ("a.b.c.empty() or d.exists()", {"a": {"b": [{"c": "x"}, {}]}}),
    ("{}.empty()", {}),
    ("a.trace('x').exists()", {"a": 1}),
    ("a = 'x' or a = 'y'", {"a": "y"}),
    # where() with an or of one member's tests (one look), and chains run as one closure
    ("a.where(b = 'x' or b = 'y' or b = 'z').exists()", {"a": [{"b": "q"}, {"b": "z"}]}),
    ("a.where(b = 'x' or b = 'y').exists()", {"a": [{"b": "q"}, {}, "s"]}),
    ("a.where(b = 'x' or c = 'y').count() = 1", {"a": [{"c": "y"}, {"b": "y"}]}),
    ("a.b.where(c = 'x').where(d = 'y').exists()", {"a": [{"b": [{"c": "x", "d": "y"}]}]}),
    ("a.b.where(c = 'x').where(d = 'y').exists()", {"a": [{"b": {"c": "x", "d": "n"}}, 1]}),
    ("a.b.where(c = 'x').count() = 2", {"a": {"b": [{"c": "x"}, {"c": "x"}, {"c": "w"}]}}),
]


@pytest.mark.parametrize(("expression", "node"), EDGES)
def test_compiled_edge_cases_agree_with_fhirpathpy(expression: str, node: Any) -> None:
    compiled = compile_invariant(expression)
    assert compiled is not None, expression
    check = compiled_fhirpath(expression)
    assert not isinstance(check, str)
    expected = check(node, {"resource": node, "rootResource": node})
    assert compiled(node, node, node) == expected


@pytest.mark.parametrize(
    ("expression", "node"),
    [
        ("a.exists()", {"a": "x", "_a": EXTENSION}),  # fhirpathpy: two items
        ("value.exists()", {"valueString": "x"}),  # a choice element, found when typed
        ("a = 'x'", {"a": ["x", "y"]}),  # several items
        ("a = '2024'", {"a": "2024"}),  # a date, typed there
        ("a = 1.5", {"a": 1.5}),
        ("a and b", {"a": "x", "b": True}),  # not a boolean: fhirpathpy raises
        ("a.where(b).exists()", {"a": [{"b": "x"}]}),
        ("a.exists()", {"a": [None]}),
        ("a.where(b = 'x' or b = 'y').exists()", {"a": [{"b": "y", "_b": EXTENSION}]}),
        ("a.b.where(c = 'x').exists()", {"a": [{"b": {"c": "x"}, "_b": EXTENSION}]}),
        ("a.b.where(c = 'x').exists()", {"a": {"b": [{"c": "2024"}]}}),
    ],
)
def test_what_the_compiled_form_leaves_to_fhirpathpy(expression: str, node: Any) -> None:
    compiled = compile_invariant(expression)
    if compiled is None:
        return  # not compiled at all: fhirpathpy evaluates it
    with pytest.raises(Fallback):
        compiled(node, node, node)


@pytest.mark.parametrize(
    "expression",
    [
        "a is Quantity",
        "a.as(Reference)",
        "a | b",
        "'x' in a",
        "a.resolve()",
        "a.memberOf('http://x')",
        "Patient.name",
        "a[0]",
        "-a",
        "a = @2024",
        "a.hasValue()",
        "a.ofType(Coding)",
        "a.iif(b, c)",
    ],
)
def test_what_is_not_compiled(expression: str) -> None:
    assert compile_invariant(expression) is None
