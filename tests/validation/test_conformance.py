"""The generic validator reaches the HL7 reference validator's verdict on the HL7 cases.

Cases come from ``tests/conformance/fhir-test-cases`` (vendored, Apache-2.0); each folder is
discovered, so a case added there is tested without a change here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.validation.definitions import Definitions, read_conformance_file
from reko_fhir.validation.validator import Validator
from reko_fhir.validation.xmljson import core_reader
from tests.golden import CONFORMANCE_CASES

CASES = CONFORMANCE_CASES


def cases() -> list[Any]:
    return [
        pytest.param(
            folder, json.loads((folder / "case.json").read_text(encoding="utf-8")), id=folder.name
        )
        for folder in sorted(p for p in CASES.iterdir() if p.is_dir())
    ]


def conformance_run(folder: Path, *, compiled: bool = True) -> tuple[Validator, Any, str]:
    """The validator with the case's profile and supporting definitions, the instance, the
    profile's url (``compiled=False``: invariants through fhirpathpy, as Validator says)."""
    case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    definitions = Definitions.core()
    for name in [case["profile"], *case.get("supporting", [])]:
        definitions.add_all(read_conformance_file(folder / name))
    data = (folder / case["instance"]).read_bytes()
    instance = core_reader().read(data) if case["instance"].endswith(".xml") else json.loads(data)
    structures = [
        r
        for r in read_conformance_file(folder / case["profile"])
        if r["resourceType"] == "StructureDefinition"
    ]
    profile = next((s for s in structures if s["type"] == instance["resourceType"]), structures[0])
    return Validator(definitions, compiled=compiled), instance, str(profile["url"])


@pytest.mark.parametrize(("folder", "case"), cases())
def test_the_verdict_matches_the_reference_validator(folder: Path, case: dict[str, Any]) -> None:
    validator, instance, url = conformance_run(folder)
    issues = validator.validate(instance, url)

    errors = [i for i in issues if i.is_error]
    assert (not errors) == case["valid"], [(i.diagnostics, i.expression) for i in errors]
    for issue in errors:
        assert issue.expression, "every error names the element"
        assert issue.expression.split(".")[0].split("[")[0] == instance["resourceType"]
