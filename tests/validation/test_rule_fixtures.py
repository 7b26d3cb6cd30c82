"""Every rule of the contract has a valid and an invalid fixture, with the issue it must give.

``fixtures/valid/<rule>.json`` pass; ``fixtures/invalid/<rule>.json`` fail with the severity,
FHIRPath ``expression`` and message that ``fixtures/invalid.expected.json`` names for the rule;
``fixtures/warnings/`` likewise, for the rule that only warns (the 90-day focus).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.golden import FIXTURES

SERVICE = ValidationService(reko_definitions())


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def cases(kind: str) -> list[Any]:
    expected = load(FIXTURES / f"{kind}.expected.json")
    found = sorted((FIXTURES / kind).glob("*.json"))
    assert sorted(expected) == sorted(p.stem for p in found), (
        f"{kind}: fixtures and expectations differ"
    )
    return [pytest.param(p, expected[p.stem], id=p.stem) for p in found]


@pytest.mark.parametrize("path", sorted((FIXTURES / "valid").glob("*.json")), ids=lambda p: p.stem)
def test_a_valid_fixture_has_no_error(path: Path) -> None:
    issues = SERVICE.validate(load(path))
    assert [(i.expression, i.diagnostics) for i in issues if i.is_error] == []


@pytest.mark.parametrize(("path", "expected"), cases("invalid") + cases("warnings"))
def test_an_invalid_fixture_gives_its_issue_at_its_element(
    path: Path, expected: dict[str, str]
) -> None:
    issues = SERVICE.validate(load(path))
    matching = [
        i
        for i in issues
        if i.severity.value == expected["severity"]
        and i.expression == expected["expression"]
        and expected["contains"] in i.diagnostics
    ]
    assert matching, [
        (i.severity.value, i.expression, i.diagnostics)
        for i in issues
        if i.severity.value != "warning" or "days" in i.diagnostics
    ]
    valid = SERVICE.validate(load(FIXTURES / "valid" / path.name))
    assert not [
        i
        for i in valid
        if i.severity.value == expected["severity"] and i.expression == expected["expression"]
    ]


def test_every_rule_across_resources_has_fixtures() -> None:
    names = {p.stem for p in (FIXTURES / "invalid").glob("*.json")} | {
        p.stem for p in (FIXTURES / "warnings").glob("*.json")
    }
    assert {
        "rule-consent-before-disclosure",
        "rule-consent-before-notice",
        "rule-coordination-needs-consent",
        "rule-reference-integrity",
        "rule-90-day-focus",
        # contract 2
        "rule-consent-named-organisation-only",
        "rule-consent-of-the-performing-unit",
        "rule-plan-needs-consent",
        "rule-90-day-own-episode",
        "rule-no-diagnosis-anywhere",
    } <= names
