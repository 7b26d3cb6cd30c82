"""Contract 2 in the journal mappings: plan kind, REKO status ``ingen``, a care team without a
coordinator (a warning), and diagnosis fields named as warnings, never mapped silently."""

from __future__ import annotations

import json

from reko_fhir.domain import CarePlanCategory, RekoStatus
from reko_fhir.mapping.journal import MappingResult, Severity, load_mapping, map_export
from tests.golden import FIXTURES, MAPPINGS

CASE_C = FIXTURES / "mapping" / "c-young-adult-activity-compensation"


def run(mapping: str, data: bytes, name: str) -> MappingResult:
    return map_export(load_mapping(MAPPINGS / f"{mapping}.yaml"), data, name)


def warnings(result: MappingResult) -> list[str]:
    return [str(i) for i in result.issues if i.severity is Severity.WARNING]


def test_the_plan_kind_is_mapped_in_every_format() -> None:
    for path in sorted(CASE_C.glob("input.*")):
        result = run(path.name.split(".")[1], path.read_bytes(), path.name)
        (case,) = result.cases
        assert case.plan is not None
        assert case.plan.category is CarePlanCategory.INTRADE_I_ARBETSLIVET, path.name


def test_a_plan_without_a_kind_is_for_returning_to_work() -> None:
    path = FIXTURES / "mapping" / "a-primary-care" / "input.nordjournal-json.json"
    (case,) = run("nordjournal-json", path.read_bytes(), path.name).cases
    assert case.plan is not None
    assert case.plan.category is CarePlanCategory.ATERGANG_I_ARBETE


def test_reko_status_ingen_maps_and_carries_rehabstods_id() -> None:
    export = json.loads((CASE_C / "input.nordjournal-json.json").read_text(encoding="utf-8"))
    export["cases"][0]["status"] = "Ingen"
    (case,) = run("nordjournal-json", json.dumps(export).encode(), "x.json").cases
    assert case.status is RekoStatus.INGEN
    assert [s.rehabstod_id for s in RekoStatus] == [f"REKO_{n}" for n in range(1, 9)]


def test_a_care_team_without_a_coordinator_maps_with_a_warning() -> None:
    export = json.loads((CASE_C / "input.nordjournal-json.json").read_text(encoding="utf-8"))
    export["cases"][0]["careTeam"] = [{"member": "SE2321000016-A6H3"}, {"member": "AF"}]
    result = run("nordjournal-json", json.dumps(export).encode(), "x.json")
    assert len(result.cases) == 1
    assert warnings(result) == [
        "warning: x.json: cases[0].careTeam[0]: the care team has no rehabiliteringskoordinator "
        "(allowed; who coordinates?)"
    ]


def test_a_diagnosis_field_in_a_json_export_is_a_warning_without_its_value() -> None:
    export = json.loads((CASE_C / "input.nordjournal-json.json").read_text(encoding="utf-8"))
    export["cases"][0]["journalEntries"][1]["diagnosis"] = {"code": "F32.1", "system": "ICD-10-SE"}
    export["cases"][0]["journalEntries"][2]["diagnosis"] = {"code": "F43.8"}
    export["cases"][0]["patient"]["icd10"] = ""  # empty: nothing was left out
    result = run("nordjournal-json", json.dumps(export).encode(), "x.json")
    assert len(result.cases) == 1, "a warning, not an error"
    assert warnings(result) == [
        "warning: x.json: cases[0].journalEntries[1], field 'diagnosis': a diagnosis field is "
        "not mapped: coordination is documented without diagnosis"
    ]
    assert "F32" not in " ".join(warnings(result))


def test_a_diagnosis_element_in_an_xml_export_is_a_warning() -> None:
    text = (CASE_C / "input.vardsys-xml.xml").read_text(encoding="utf-8")
    text = text.replace(
        '<Anteckning id="J-95533" kod="KI-S" signerad="SE2321000016-R5W2" status="S">',
        '<Anteckning id="J-95533" kod="KI-S" signerad="SE2321000016-R5W2" status="S">'
        "<Diagnos kod='F32.1'/>",
    )
    result = run("vardsys-xml", text.encode(), "x.xml")
    assert len(result.cases) == 1
    (message,) = warnings(result)
    assert message.startswith("warning: x.xml: line ")
    assert "<Diagnos>, field 'Diagnos': a diagnosis field is not mapped" in message


def test_a_diagnosis_column_in_a_csv_export_is_a_warning() -> None:
    lines = (CASE_C / "input.regionexport-csv.csv").read_text(encoding="utf-8").splitlines()
    rows = [lines[0] + ";diagnoskod"] + [
        line + (";F32.1" if i == 5 else ";") for i, line in enumerate(lines[1:], start=2)
    ]
    result = run("regionexport-csv", ("\n".join(rows) + "\n").encode(), "x.csv")
    assert len(result.cases) == 1
    assert warnings(result) == [
        "warning: x.csv: row 5, field 'diagnoskod': a diagnosis field is not mapped: "
        "coordination is documented without diagnosis"
    ]


def test_no_golden_export_carries_a_diagnosis_field() -> None:
    for path in sorted((FIXTURES / "mapping").glob("*/input.*")):
        result = run(path.name.split(".")[1], path.read_bytes(), path.name)
        assert not [w for w in warnings(result) if "diagnosis" in w], path
