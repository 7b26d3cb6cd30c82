"""``reko-fhir validate``: inputs, exit codes and the four report formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from reko_fhir.cli import app
from tests.golden import FIXTURES, ROOT

runner = CliRunner()
VALID = FIXTURES / "valid" / "procedure-no-diagnosis.json"
INVALID = FIXTURES / "invalid" / "procedure-no-diagnosis.json"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["validate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_valid_resource_exits_0_and_an_invalid_one_1() -> None:
    code, out, _ = run(str(VALID))
    assert code == 0
    assert out.endswith("1 resource(s): 0 error(s), 1 warning(s), 0 check(s) not decided\n")
    code, out, _ = run(str(INVALID))
    assert code == 1
    assert (
        "Procedure.reasonCode: error: max allowed = 0, but found 1: a diagnosis"
        " (http://hl7.org/fhir/sid/icd-10#F32.1); diagnoses are not to be sent here"
        " (the profile says: Ingen diagnos)\n"
    ) in out


def test_the_json_report_lists_issues_per_resource() -> None:
    code, out, _ = run(str(VALID), str(INVALID), "--report", "json")
    assert code == 1
    first, second = json.loads(out)["results"]
    assert first["issues"] == [
        {
            "severity": "warning",
            "code": "invariant",
            "diagnostics": "dom-6: A resource should have narrative for robust management",
            "expression": "Procedure",
        }
    ]
    errors = [i for i in second["issues"] if i["severity"] == "error"]
    assert errors == [
        {
            "severity": "error",
            "code": "structure",
            "diagnostics": "max allowed = 0, but found 1: a diagnosis"
            " (http://hl7.org/fhir/sid/icd-10#F32.1); diagnoses are not to be sent here"
            " (the profile says: Ingen diagnos)",
            "expression": "Procedure.reasonCode",
        },
        {  # contract 2, rule 5: the ICD-10 coding itself, wherever it stands
            "severity": "error",
            "code": "business-rule",
            "diagnostics": "a diagnosis code (http://hl7.org/fhir/sid/icd-10) is not allowed here: "
            "coordination is documented without diagnosis (profile contract 2, rule 5)",
            "expression": "Procedure.reasonCode[0].coding[0]",
        },
    ]


def test_junit_shows_each_resource_as_a_test_case(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    (folder / "a-valid.json").write_bytes(VALID.read_bytes())
    (folder / "nested" / "b-invalid.json").write_bytes(INVALID.read_bytes())
    report = tmp_path / "report.xml"
    code, out, _ = run(str(folder), "--report", "junit", "--output", str(report))
    assert code == 1
    assert out == (
        f"2 resource(s): 1 error(s), 2 warning(s), 0 check(s) not decided (report: {report})\n"
    )
    suite = etree.fromstring(report.read_bytes())[0]
    cases = suite.findall("testcase")
    assert [c.get("classname").rsplit("/", 1)[-1] for c in cases] == [
        "a-valid.json",
        "b-invalid.json",
    ]
    assert suite.get("failures") == "1"
    assert [c.find("failure") is not None for c in cases] == [False, True]


def test_sarif_is_2_1_0_with_a_result_per_issue() -> None:
    code, out, _ = run(str(INVALID), "--report", "sarif")
    doc = json.loads(out)
    assert code == 1
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    error = next(r for r in results if r["level"] == "error")
    assert (
        error["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "Procedure.reasonCode"
    )
    assert error["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == str(INVALID)


def test_ndjson_and_xml_inputs(tmp_path: Path) -> None:
    ndjson = tmp_path / "two.ndjson"
    ndjson.write_text(
        VALID.read_text(encoding="utf-8").replace("\n", "")
        + "\n"
        + INVALID.read_text(encoding="utf-8").replace("\n", "")
        + "\n",
        encoding="utf-8",
    )
    code, out, _ = run(str(ndjson), "--report", "json")
    assert code == 1
    assert [r["source"] for r in json.loads(out)["results"]] == [f"{ndjson}:1", f"{ndjson}:2"]
    xml = FIXTURES / "mapping" / "a-primary-care" / "expected.xml"
    code, out, _ = run(str(xml))
    assert code == 0
    assert "0 error(s)" in out


def test_an_explicit_profile_file_and_an_unknown_meta_profile(tmp_path: Path) -> None:
    resource = json.loads(VALID.read_text(encoding="utf-8"))
    resource["meta"]["profile"] = ["http://example.org/StructureDefinition/unknown"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(resource), encoding="utf-8")
    code, out, _ = run(str(path), "--report", "json")
    issues = json.loads(out)["results"][0]["issues"]
    assert code == 0
    assert {
        "severity": "warning",
        "code": "not-supported",
        "diagnostics": "profile 'http://example.org/StructureDefinition/unknown' is not loaded; not checked",
        "expression": "Procedure.meta.profile",
    } in issues
    profile = ROOT / "profiles" / "StructureDefinition-RekoProcedure.json"
    code, _, _ = run(str(INVALID), "--profile", str(profile))
    assert code == 1


def test_usage_errors_and_unreadable_input_exit_2(tmp_path: Path) -> None:
    assert run(str(tmp_path / "missing.json"))[0] == 2
    assert run(str(VALID), "--profile", "http://example.org/none")[0] == 2
    assert run(str(VALID), "--ig", str(tmp_path / "nope"))[0] == 2


def test_the_valid_fixtures_exit_0() -> None:
    code, out, err = run(str(FIXTURES / "valid"))
    assert (code, err) == (0, "")
    found = [json.loads(p.read_text(encoding="utf-8")) for p in (FIXTURES / "valid").glob("*.json")]
    count = sum(1 + len(r.get("entry", [])) for r in found)  # a Bundle's entries count too
    assert out.splitlines()[-1].startswith(f"{count} resource(s): 0 error(s), ")


@pytest.mark.parametrize(
    "path", sorted((FIXTURES / "invalid").glob("*.json")), ids=lambda p: p.stem
)
def test_each_invalid_fixture_exits_1_with_its_expression(path: Path) -> None:
    expected = json.loads((FIXTURES / "invalid.expected.json").read_text(encoding="utf-8"))[
        path.stem
    ]
    code, out, _ = run(str(path), "--report", "json")
    assert code == 1
    assert any(
        i["severity"] == "error" and i["expression"] == expected["expression"]
        for result in json.loads(out)["results"]
        for i in result["issues"]
    )


DEEP_JSON = '{"resourceType": "Basic", "extension": ' + "[" * 10_000 + "]" * 10_000 + "}"
DEEP_XML = (
    "<Basic xmlns='http://hl7.org/fhir'>"
    + "<extension>" * 10_000
    + "</extension>" * 10_000
    + "</Basic>"
)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.json", '{"resourceType": "Patient",', "not readable as FHIR"),
        (
            "broken.xml",
            "<Patient xmlns='http://hl7.org/fhir'><active value='true'>",
            "not readable as FHIR",
        ),
        ("not-fhir.json", '{"hello": "world"}', "not a FHIR resource"),
        (
            "dtd.xml",
            "<!DOCTYPE Patient SYSTEM 'http://127.0.0.1:9/x.dtd'><Patient xmlns='http://hl7.org/fhir'/>",
            "DOCTYPE",
        ),
        (
            "entity.xml",
            "<!DOCTYPE p [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><Patient xmlns='http://hl7.org/fhir'><id value='&x;'/></Patient>",
            "DOCTYPE",
        ),
        ("deep.json", DEEP_JSON, "nested deeper"),
        ("deep.xml", DEEP_XML, "not readable as FHIR"),
    ],
)
def test_malformed_input_is_a_fatal_issue_and_exit_2(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, out, err = run(str(path), "--report", "json")
    assert code == 2
    assert "Traceback" not in out + err
    (result,) = json.loads(out)["results"]
    (issue,) = result["issues"]
    assert issue["severity"] == "fatal"
    assert message in issue["diagnostics"]
    assert name in issue["diagnostics"]


def test_an_unreadable_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(VALID.read_bytes())
    (tmp_path / "b.json").write_text("{", encoding="utf-8")
    code, out, _ = run(str(tmp_path), "--report", "junit")
    cases = etree.fromstring(out.encode())[0].findall("testcase")
    assert code == 2
    assert [c.find("failure") is not None for c in cases] == [False, True]  # in file order
