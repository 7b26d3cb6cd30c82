"""The journal engine on small exports: conversions, references, and how problems are reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reko_fhir.mapping.journal import MappingResult, load_mapping, map_export

CSV_MAPPING = {
    "reader": "csv",
    "options": {"delimiter": ";"},
    "dates": {"date": "iso", "datetime": ["%Y-%m-%d %H:%M", "iso"]},
    "source_system": "system",
    "case": {
        "select": "group-by case",
        "fields": {
            "record_id": "case",
            "personnummer": "pnr",
            "unit_hsa_id": "unit",
            "unit_name": "unit_name",
            "status": "status",
            "start": "start",
            "coordinator": "reko",
        },
    },
    "records": {
        "staff": {"select": "kind=STAFF", "fields": {"hsa_id": "hsa", "title": "title"}},
        "actors": {
            "select": "kind=ACTOR",
            "fields": {"key": "ref", "org_number": "org", "type": "title", "name": "text"},
        },
        "consents": {
            "select": "kind=CONSENT",
            "fields": {
                "record_id": "id",
                "form": "title",
                "recorded_at": "when",
                "valid_from": "start",
                "actors": {"path": "ref", "split": ","},
            },
        },
        "consent_changes": {
            "select": "kind=CHANGE",
            "fields": {"consent": "ref", "on": "when", "kind": "title"},
        },
        "activities": {
            "select": "kind=ACT",
            "fields": {
                "record_id": "id",
                "code": "title",
                "performed": "when",
                "performer": "hsa",
                "actors": {"path": "ref", "split": ","},
            },
        },
    },
    "tables": {
        "reko_status": {"A": "aktiv"},
        "role": {"K": "rehabiliteringskoordinator"},
        "actor_type": {"FK": "forsakringskassan"},
        "consent_form": {"M": "muntligt"},
        "consent_change": {"R": "revoked"},
        "activity_code": {
            "S": {"kva": "GC001", "part": "personligt-stod"},
            "E": {"kva": "GC001", "part": "extern-samverkan"},
        },
    },
}
HEADER = "kind;system;case;pnr;unit;unit_name;status;start;reko;hsa;title;ref;org;text;id;when"
CASE = "urn:oid:1.2.752.9999.1;C1;19121212-1212;SE2321000016-U001;Enheten;A;2025-03-01;SE2321000016-K001"
ROWS = [
    f"STAFF;{CASE};SE2321000016-K001;K;;;;;",
    f"ACTOR;{CASE};;FK;FK1;2021005521;Försäkringskassan;;",
    f"CONSENT;{CASE};;M;FK1;;;S1;2025-03-01 09:00",
    f"ACT;{CASE};SE2321000016-K001;S;;;;A1;2025-03-02 10:00",
    f"ACT;{CASE};SE2321000016-K001;E;FK1;;;A2;2025-03-03T09:00:00Z",
]


def run(tmp_path: Path, rows: list[str], header: str = HEADER) -> MappingResult:
    mapping = tmp_path / "csv.yaml"
    mapping.write_text(yaml.safe_dump(CSV_MAPPING, allow_unicode=True), encoding="utf-8")
    data = "\n".join([header, *rows]).encode()
    return map_export(load_mapping(mapping), data, "export.csv")


def messages(result: MappingResult) -> list[str]:
    return [str(i) for i in result.issues]


def test_a_clean_csv_export_maps(tmp_path: Path) -> None:
    result = run(tmp_path, ROWS)
    assert messages(result) == []
    (case,) = result.cases
    # "Z" is placed in the mapping's time zone, so every format writes the same offset.
    assert case.activities[1].performed.isoformat() == "2025-03-03T10:00:00+01:00"
    assert case.consents[0].actors[0].value == "2021005521"


def test_rows_that_disagree_on_a_case_field_are_named(tmp_path: Path) -> None:
    rows = [*ROWS, ROWS[3].replace("A1;", "A3;").replace("SE2321000016-U001", "SE2321000016-U002")]
    result = run(tmp_path, rows)
    assert result.cases == []
    assert any(
        "field 'unit': conflicting values: ['SE2321000016-U001', 'SE2321000016-U002']" in m
        for m in messages(result)
    )


def test_conflicting_personnummer_is_reported_without_the_numbers(tmp_path: Path) -> None:
    rows = [*ROWS, ROWS[0].replace("19121212-1212", "19780412-2385")]
    text = "\n".join(messages(run(tmp_path, rows)))
    assert "conflicting values: several values" in text
    assert "1212" not in text.replace("19121212", "")
    assert "2385" not in text


def test_an_invalid_personnummer_is_named_but_not_repeated(tmp_path: Path) -> None:
    rows = [r.replace("19121212-1212", "19121212-1213") for r in ROWS]
    result = run(tmp_path, rows)
    assert result.cases == []
    (first, *_) = messages(result)
    assert first == (
        "error: export.csv: case C1, field 'pnr': invalid personnummer: "
        "the check digit of the personnummer is wrong"
    )
    assert "1213" not in "".join(messages(result))


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    result = run(tmp_path, [r.rsplit(";", 1)[0] for r in ROWS], HEADER.rsplit(";", 1)[0])
    assert messages(result) == ["error: export.csv: row 1: the header has no column 'when'"]


def test_a_row_with_too_many_cells_is_named(tmp_path: Path) -> None:
    result = run(tmp_path, [*ROWS[:2], ROWS[2] + ";extra"])
    assert messages(result) == ["error: export.csv: row 4: has 17 cells, the header has 16"]


def test_an_unknown_actor_reference_is_named(tmp_path: Path) -> None:
    rows = [*ROWS[:4], ROWS[4].replace(";FK1;", ";FK9;")]
    assert messages(run(tmp_path, rows)) == [
        "error: export.csv: row 6 (A2), field 'ref': the activity names actor 'FK9', which the export does not describe"
    ]


def test_disclosure_after_revocation_is_an_error_on_that_activity(tmp_path: Path) -> None:
    revoke = f"CHANGE;{CASE};;R;S1;;;;2025-03-02"
    # The consent is revoked on 2025-03-02; the FK contact on 03-03 is no longer covered, and
    # GC001 on 03-03 has no consent in force at all.
    result = run(tmp_path, [*ROWS, revoke])
    assert result.cases == []
    assert any(
        "row 6 (A2), field 'ref': no consent covers disclosure to Försäkringskassan" in m
        for m in messages(result)
    )
    assert any(
        "row 6 (A2): coordination (GC001) on 2025-03-03 has no consent in force" in m
        for m in messages(result)
    )


def test_a_change_to_an_unexported_consent_is_named(tmp_path: Path) -> None:
    orphan = f"CHANGE;{CASE};;R;S9;;;;2025-03-02"
    assert "error: export.csv: row 7: the change refers to consent 'S9', not exported" in messages(
        run(tmp_path, [*ROWS, orphan])
    )


@pytest.mark.parametrize("data", [b"", b"   \n"])
def test_an_empty_export_is_an_issue(tmp_path: Path, data: bytes) -> None:
    mapping = tmp_path / "csv.yaml"
    mapping.write_text(yaml.safe_dump(CSV_MAPPING), encoding="utf-8")
    result = map_export(load_mapping(mapping), data, "export.csv")
    assert messages(result) == ["error: export.csv: document: the export is empty"]


XML_MAPPING = {
    "reader": "xml",
    "options": {"namespaces": {"x": "urn:test"}},
    "source_system": {"value": "urn:oid:1.2.752.9999.1"},
    "case": {"select": "//x:Case", "fields": {k: f"@{k}" for k in CSV_MAPPING["case"]["fields"]}},
    "records": {"staff": {"select": "x:Staff", "fields": {"hsa_id": "@hsa", "title": "@title"}}},
    "tables": {"reko_status": {"A": "aktiv"}, "role": {"K": "rehabiliteringskoordinator"}},
}


def run_xml(tmp_path: Path, data: bytes) -> MappingResult:
    mapping = tmp_path / "xml.yaml"
    mapping.write_text(yaml.safe_dump(XML_MAPPING), encoding="utf-8")
    return map_export(load_mapping(mapping), data, "export.xml")


def test_xml_with_an_external_entity_is_refused_unread(tmp_path: Path) -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Case xmlns="urn:test" record_id="&x;"/>'
    )
    assert messages(run_xml(tmp_path, data)) == [
        "error: export.xml: document: XML with a DOCTYPE or entity declarations is not accepted"
    ]


def test_malformed_xml_is_located(tmp_path: Path) -> None:
    result = run_xml(tmp_path, b'<?xml version="1.0"?>\n<Case xmlns="urn:test">\n<Staff>\n</Case>')
    (message,) = messages(result)
    assert message.startswith("error: export.xml: line 4 column ")
    assert "mismatch" in message


def test_xml_records_are_located_by_line(tmp_path: Path) -> None:
    data = (
        b'<Case xmlns="urn:test" record_id="C1" personnummer="191212121212" '
        b'unit_hsa_id="SE2321000016-U001" unit_name="E" status="A" start="2025-03-01" '
        b'coordinator="SE2321000016-K001">\n'
        b'<Staff hsa="SE2321000016-K001" title="K"/>\n<Staff hsa="bad" title="K"/>\n</Case>'
    )
    assert messages(run_xml(tmp_path, data)) == [
        "error: export.xml: line 3 <Staff>, field '@hsa': 'bad' is not an HSA-id: "
        "an HSA-id is SE + 10 digits (or 12 beginning 16) + '-' + 1-31 letters/digits"
    ]
