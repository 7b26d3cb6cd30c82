"""``reko-fhir validate`` reports for CI: undecided counts, Bundle entries as test cases, SARIF
rules and locations, non-FHIR files skipped, globs, best-practice warnings grouped or off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from reko_fhir.cli import app
from reko_fhir.outcomes import Issue, IssueCode, IssueSeverity
from reko_fhir.validation import reports
from reko_fhir.validation.inputs import InputError, iter_inputs
from tests.golden import FIXTURES

runner = CliRunner()
GOLDEN_B = FIXTURES / "mapping" / "b-psychiatry-revoked-consent" / "expected.json"
INVALID = FIXTURES / "invalid" / "procedure-no-diagnosis.json"
UNDECIDED = Issue(
    IssueSeverity.INFORMATION,
    IssueCode.NOT_SUPPORTED,
    "x-1: not checked: fhirpathpy cannot evaluate it here (boom); expression: a.b()",
    "Patient.name[0]",
)
RESULTS = [reports.Result("p.json", "Patient", "1", [UNDECIDED])]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", *args])
    return result.exit_code, result.stdout


def test_every_report_counts_the_checks_not_decided() -> None:
    assert reports.text(RESULTS).endswith(
        "1 resource(s): 0 error(s), 0 warning(s), 1 check(s) not decided\n"
    )
    assert json.loads(reports.as_json(RESULTS))["summary"]["undecided"] == 1
    suite = etree.fromstring(reports.junit(RESULTS).encode())[0]
    assert suite.find("properties/property[@name='undecided']").get("value") == "1"
    run_ = json.loads(reports.sarif(RESULTS))["runs"][0]
    assert run_["properties"]["undecided"] == 1
    (result,) = run_["results"]
    assert (result["ruleId"], result["level"]) == ("x-1/not-decided", "note")


def test_a_bundle_gives_a_test_case_per_entry(tmp_path: Path) -> None:
    bundle = json.loads(GOLDEN_B.read_text(encoding="utf-8"))
    report = tmp_path / "r.xml"
    code, out = run(str(GOLDEN_B), "--report", "junit", "--output", str(report))
    assert code == 0
    entries = len(bundle["entry"])
    assert out.startswith(f"{entries + 1} resource(s): 0 error(s), ")  # printed with --output
    cases = etree.fromstring(report.read_bytes())[0].findall("testcase")
    assert len(cases) == entries + 1
    assert cases[1].get("name").endswith("(/entry/0/resource)")


def test_sarif_has_rules_and_a_location_per_result() -> None:
    code, out = run(str(INVALID), "--report", "sarif", "--best-practice", "show")
    assert code == 1
    run_ = json.loads(out)["runs"][0]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert "structure" in rules
    assert "dom-6" in rules
    for result in run_["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        (location,) = result["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == str(INVALID)
    error = next(r for r in run_["results"] if r["level"] == "error")
    assert error["locations"][0]["properties"]["jsonPointer"] == "/reasonCode"


def test_json_pointer_of_fhirpath() -> None:
    assert reports.json_pointer("Bundle.entry[3].resource.code.coding[0]") == (
        "/entry/3/resource/code/coding/0"
    )
    assert reports.json_pointer("CarePlan.category:atergang") == "/category"
    assert reports.json_pointer("Procedure.performed[x]") == ""
    assert reports.json_pointer("Procedure") == ""


def test_a_folder_skips_what_is_not_fhir_and_takes_globs(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "x"}', encoding="utf-8")
    (tmp_path / "pom.xml").write_text("<project/>", encoding="utf-8")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "bad.json").write_bytes(INVALID.read_bytes())
    (tmp_path / "other.json").write_bytes(INVALID.read_bytes())
    code, out = run(str(tmp_path), "--include", "keep/*", "--include", "*.xml")
    assert code == 1
    assert "pom.xml: note: " in out
    assert "not in the FHIR namespace; skipped" in out
    assert "other.json" not in out
    assert "None:" not in out
    assert out.splitlines()[-1].startswith("1 resource(s): 1 error(s)")
    code, out = run(str(tmp_path), "--exclude", "*.json", "--report", "junit")
    assert code == 0
    suite = etree.fromstring(out.encode())[0]
    assert (suite.get("tests"), suite.get("skipped")) == ("0", "1")


def test_best_practice_warnings_are_grouped_or_left_out() -> None:
    code, out = run(str(GOLDEN_B))
    assert code == 0
    grouped = [line for line in out.splitlines() if "dom-6" in line]
    assert len(grouped) == 1
    assert grouped[0].startswith("best practice: warning: dom-6: ")
    code, out = run(str(GOLDEN_B), "--best-practice", "off", "--report", "json")
    doc = json.loads(out)
    assert not [i for r in doc["results"] for i in r["issues"] if "dom-6" in i["diagnostics"]]
    code, out = run(str(GOLDEN_B), "--best-practice", "show")
    assert len([line for line in out.splitlines() if "dom-6" in line]) > 1


def test_ndjson_is_read_one_record_at_a_time(tmp_path: Path) -> None:
    line = json.dumps(json.loads(INVALID.read_text(encoding="utf-8")))
    path = tmp_path / "big.ndjson"
    path.write_text(f"{line}\n\n{line}\n{{broken\n", encoding="utf-8")
    records = iter_inputs(path)
    assert next(records).source == f"{path}:1"
    assert next(records).source == f"{path}:3"  # blank lines are skipped, numbers kept
    with pytest.raises(InputError, match=r"big\.ndjson:4: not readable"):
        next(records)
    code, out = run(str(path), "--report", "json")
    assert code == 2
    results = json.loads(out)["results"]
    assert [r["source"] for r in results] == [f"{path}:1", f"{path}:3", str(path)]
    assert results[2]["issues"][0]["severity"] == "fatal"
