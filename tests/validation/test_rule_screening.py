"""The identifier and diagnosis rules are run only where the JSON text may hold one of their
systems (service.rules_may_apply): a screen that never changes an answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.mapping import codings as c
from reko_fhir.outcomes import Issue
from reko_fhir.validation.inputs import iter_inputs
from reko_fhir.validation.service import ValidationService, reko_definitions, rules_may_apply
from tests.validation.test_fhirpath_compiler import FIXTURE_INPUTS

SERVICE = ValidationService(reko_definitions())
ICD = "http://hl7.org/fhir/sid/icd-10"
PROCEDURE: dict[str, Any] = {
    "resourceType": "Procedure",
    "identifier": [{"system": "https://journal.example/sid", "value": "J-1"}],
    "status": "completed",
    "code": {"coding": [{"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": "GC001"}]},
    "subject": {"reference": "Patient/1"},
    "note": [{"text": "Avstämning på arbetsplatsen"}],
}


def as_rows(issues: list[Issue]) -> list[tuple[Any, ...]]:
    return [(i.severity, i.code, i.expression, i.diagnostics) for i in issues]


def text(resource: Any, *, ascii_only: bool = False) -> bytes:
    return json.dumps(resource, ensure_ascii=ascii_only).encode()


def test_a_text_without_their_systems_is_screened_out() -> None:
    assert not rules_may_apply(text(PROCEDURE))


@pytest.mark.parametrize(
    "system",
    [
        c.PERSONNUMMER,
        c.SAMORDNINGSNUMMER,
        *sorted(c.HSA_SYSTEMS),
        c.ORG_NUMBER,
        ICD,
        "urn:oid:1.2.752.116.1.1.1.1.3",
        "urn:oid:2.16.840.1.113883.6.3",
        "http://x/ICD10",
    ],
)
def test_a_text_with_one_of_their_systems_is_not(system: str) -> None:
    procedure = {**PROCEDURE, "identifier": [{"system": system, "value": "1"}]}
    assert rules_may_apply(text(procedure))


def test_escapes_of_characters_beyond_ascii_are_screened_too() -> None:
    assert b"\\u00e4" in text(PROCEDURE, ascii_only=True)
    assert not rules_may_apply(text(PROCEDURE, ascii_only=True))


@pytest.mark.parametrize(
    "escaped",
    [b"http:\\/\\/x", b"\\u0069", b"\\u007F", b"\\n", b"\\\\u00e4", b'\\"'],
)
def test_an_escape_that_may_spell_ascii_or_no_text_is_not(escaped: bytes) -> None:
    assert rules_may_apply(b'{"resourceType": "Procedure", "id": "' + escaped + b'"}')
    assert rules_may_apply(None)


@pytest.mark.parametrize("resource", FIXTURE_INPUTS)
def test_the_same_issues_with_the_text_on_every_fixture(resource: Any) -> None:
    expected = as_rows(SERVICE.validate(resource))
    for ascii_only in (False, True):
        found = SERVICE.validate(resource, text=text(resource, ascii_only=ascii_only))
        assert as_rows(found) == expected


def test_a_diagnosis_written_with_escapes_is_found_in_ndjson(tmp_path: Path) -> None:
    """The CLI passes each record's text: a system spelled with JSON escapes is still seen."""
    procedure = json.loads(json.dumps(PROCEDURE))
    procedure["code"]["coding"].append({"system": ICD, "code": "F32"})
    line = json.dumps(procedure, ensure_ascii=False).replace("/", "\\/")
    assert "icd" in line
    escaped = line.replace("icd", "\\u0069cd")
    path = tmp_path / "p.ndjson"
    path.write_text(f"{escaped}\n{json.dumps(PROCEDURE, ensure_ascii=False)}\n", encoding="utf-8")
    first, second = iter_inputs(path)
    assert first.text is not None
    assert b"icd" not in first.text.lower()
    found = SERVICE.validate(first.resource, text=first.text)
    assert any("diagnosis code" in i.diagnostics for i in found)
    assert as_rows(found) == as_rows(SERVICE.validate(first.resource))
    assert second.text is not None
    assert not rules_may_apply(second.text)
