"""The same journal records in different vendor formats give the same coordination case.

Every case folder under ``fixtures/mapping/`` holds the case as each vendor exports it
(``input.<mapping>.<ext>``, mapped with ``mappings/<mapping>.yaml``): Nordjournal JSON, Vårdsys
XML, the regional warehouse CSV. Each vendor has its own shape, codes, wording and date formats;
after mapping, the domain cases must be equal, which is what makes the identifiers (and so the
FHIR resources) the same whichever system a region exports from. Cases and formats are
discovered from the folders, so a new case or a new format is tested without editing this file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from reko_fhir.domain import KvaCode
from reko_fhir.mapping.journal.engine import MappingResult, map_file
from reko_fhir.mapping.journal.issues import Severity
from reko_fhir.mapping.journal.spec import load_mapping
from tests.golden import FIXTURES, MAPPINGS

CASES = sorted(p for p in (FIXTURES / "mapping").iterdir() if p.is_dir())
INPUTS = [path for case in CASES for path in sorted(case.glob("input.*"))]

# Case b: the last support talk (GC001) is 99 days into the sick leave, past the 90-day focus.
LATE_CASE = FIXTURES / "mapping" / "b-psychiatry-revoked-consent"
LATE_RECORD = "J-91455"


def mapping_name(path: Path) -> str:
    """``input.vardsys-xml.xml`` → ``vardsys-xml``."""
    return path.name.split(".")[1]


@cache
def mapped(path: Path) -> MappingResult:
    return map_file(load_mapping(MAPPINGS / f"{mapping_name(path)}.yaml"), path)


def input_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_fixture_cases_are_discovered() -> None:
    assert CASES, "no case folders under fixtures/mapping"
    assert all(list(case.glob("input.*")) for case in CASES)


@pytest.mark.parametrize("path", INPUTS, ids=input_id)
def test_each_input_maps_to_one_case_without_errors(path: Path) -> None:
    assert (MAPPINGS / f"{mapping_name(path)}.yaml").is_file(), f"no mapping for {path.name}"
    result = mapped(path)
    assert [str(i) for i in result.errors] == []
    assert len(result.cases) == 1


@pytest.mark.parametrize("path", [p for p in INPUTS if p.suffix == ".xml"], ids=input_id)
def test_xml_inputs_carry_an_xml_declaration(path: Path) -> None:
    assert path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


@pytest.mark.parametrize("case_dir", CASES, ids=lambda p: p.name)
def test_all_formats_of_a_case_give_equal_cases(case_dir: Path) -> None:
    inputs = sorted(case_dir.glob("input.*"))
    assert len(inputs) > 1, f"{case_dir.name} is exported in one format only; nothing to compare"
    cases = {path.name: mapped(path).cases for path in inputs}
    assert all(len(found) == 1 for found in cases.values()), cases.keys()
    (first_name, (first,)), *others = cases.items()
    for name, (case,) in others:
        assert case == first, f"{name} and {first_name} describe different cases"
    # Equal cases mean equal business identifiers, whatever the export called the records.
    assert first.source.record_id
    assert {a.source for a in first.activities}


@pytest.mark.parametrize("case_dir", CASES, ids=lambda p: p.name)
def test_all_formats_of_a_case_warn_alike(case_dir: Path) -> None:
    """The same records give the same warnings; only the location names each format's shape."""
    warnings = {
        path.name: sorted(
            (i.record_id or "", i.message)
            for i in mapped(path).issues
            if i.severity is Severity.WARNING
        )
        for path in sorted(case_dir.glob("input.*"))
    }
    assert len({tuple(found) for found in warnings.values()}) == 1, warnings


@pytest.mark.parametrize(
    "path", sorted(LATE_CASE.glob("input.*")), ids=lambda p: f"{LATE_CASE.name}/{p.name}"
)
def test_coordination_past_90_days_is_a_warning_naming_the_record(path: Path) -> None:
    result = mapped(path)
    (case,) = result.cases
    (late,) = [a for a in case.activities if a.source.record_id == LATE_RECORD]
    assert late.kva is KvaCode.GC001
    found = [
        i
        for i in result.issues
        if i.severity is Severity.WARNING and i.record_id == LATE_RECORD and "90 days" in i.message
    ]
    assert len(found) == 1, [str(i) for i in result.issues]
    (warning,) = found
    text = str(warning)
    assert text.startswith(f"warning: {path.name}: ")
    assert LATE_RECORD in text
    assert warning.field, "the warning names the field that holds the time"
    assert f"field '{warning.field}'" in text
