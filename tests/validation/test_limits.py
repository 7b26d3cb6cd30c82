"""minValue/maxValue never crash on mismatched types (the HL7 manifest's
toplevel-minvalueduration cases did), apply to Quantity's specializations and compare dates as
instants; files with a byte order mark are read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reko_fhir.validation.compiled import compile_snapshot
from reko_fhir.validation.definitions import CORE_BASE, Definitions, read_conformance_file
from reko_fhir.validation.element_checks import Run, limits
from reko_fhir.validation.validator import Validator

EX = "http://example.org/StructureDefinition/"


def run_limits(value: Any, **definition: Any) -> list[str]:
    rule = compile_snapshot([{"id": "X", "path": "X", **definition}])
    run = Run({}, {})
    limits(run, rule, value, "X")
    return [i.diagnostics for i in run.issues]


def test_bounds_of_another_type_are_not_compared() -> None:
    assert run_limits("abc", minValueInteger=3) == []
    assert run_limits(2, minValueQuantity={"value": 3}) == []
    assert run_limits(2, minValueInteger=3) == ["2 is less than the minimum 3"]


def test_dates_compare_as_instants() -> None:
    # 10:00+02:00 is 08:00Z: not after 09:00Z, though larger as text.
    assert run_limits("2024-01-01T10:00:00+02:00", maxValueDateTime="2024-01-01T09:00:00Z") == []
    assert run_limits("2024-01-02", maxValueDate="2024-01-01") == [
        "2024-01-02 is more than the maximum 2024-01-01"
    ]


def test_a_quantity_gets_its_quantity_bounds() -> None:
    definitions = Definitions.core()
    definitions.add(
        {
            "resourceType": "StructureDefinition",
            "url": EX + "Wait",
            "name": "Wait",
            "status": "active",
            "kind": "resource",
            "abstract": False,
            "type": "Observation",
            "baseDefinition": CORE_BASE + "Observation",
            "derivation": "constraint",
            "differential": {
                "element": [
                    {
                        "id": "Observation.value[x]",
                        "path": "Observation.value[x]",
                        "type": [{"code": "Quantity"}],
                        "minValueQuantity": {"value": 5, "code": "min"},
                    }
                ]
            },
        }
    )
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": 3, "code": "min", "system": "http://unitsofmeasure.org"},
    }
    issues = Validator(definitions).validate(observation, EX + "Wait")
    assert [i.diagnostics for i in issues if i.is_error] == ["3 is less than the minimum 5"]


def test_a_byte_order_mark_is_no_obstacle(tmp_path: Path) -> None:
    path = tmp_path / "cs.xml"
    path.write_bytes(
        b"\xef\xbb\xbf<?xml version='1.0'?><CodeSystem xmlns='http://hl7.org/fhir'>"
        b"<url value='http://example.org/cs'/><status value='active'/>"
        b"<content value='complete'/></CodeSystem>"
    )
    (found,) = read_conformance_file(path)
    assert found["url"] == "http://example.org/cs"
