"""Every rule of the contract has a valid and an invalid fixture, with the issue it must give.

``fixtures/validation/<rule>/`` holds ``valid.json``, ``invalid.json`` and ``expected.json``
(severity, FHIRPath ``expression``, and text the diagnostics contain); folders are discovered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.golden import FIXTURES

SERVICE = ValidationService(reko_definitions())
RULES = sorted(p for p in (FIXTURES / "validation").iterdir() if p.is_dir())


def load(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("folder", RULES, ids=[p.name for p in RULES])
def test_the_valid_fixture_passes_and_the_invalid_one_is_caught_at_its_element(
    folder: Path,
) -> None:
    expected = load(folder / "expected.json")
    valid = SERVICE.validate(load(folder / "valid.json"))
    assert [i for i in valid if i.is_error] == []
    assert not [
        i
        for i in valid
        if i.severity.value == expected["severity"] and i.expression == expected["expression"]
    ]
    found = SERVICE.validate(load(folder / "invalid.json"))
    matching = [
        i
        for i in found
        if i.severity.value == expected["severity"]
        and i.expression == expected["expression"]
        and str(expected["contains"]) in i.diagnostics
    ]
    assert matching, [
        (i.severity.value, i.expression, i.diagnostics)
        for i in found
        if i.severity.value != "warning" or "days" in i.diagnostics
    ]


def test_there_is_a_fixture_for_each_rule_across_resources() -> None:
    names = {p.name for p in RULES}
    assert {
        "rule-consent-before-disclosure",
        "rule-consent-before-notice",
        "rule-coordination-needs-consent",
        "rule-reference-integrity",
        "rule-90-day-focus",
    } <= names
