"""Mapping files are checked when they load: mistakes in them are usage errors, found early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reko_fhir.mapping.journal import MappingSpecError, load_mapping, resolve_mapping_path
from tests.golden import MAPPINGS

MINIMAL: dict[str, Any] = {
    "reader": "json",
    "source_system": {"value": "urn:oid:1.2.752.9999.1"},
    "case": {
        "select": "cases[*]",
        "fields": {
            "record_id": "id",
            "personnummer": "pnr",
            "unit_hsa_id": "unit",
            "unit_name": "unitName",
            "status": "status",
            "start": "start",
            "coordinator": "reko",
        },
    },
    "records": {"staff": {"select": "staff[*]", "fields": {"hsa_id": "hsa", "title": "title"}}},
    "tables": {"reko_status": {"A": "aktiv"}, "role": {"K": "rehabiliteringskoordinator"}},
}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def with_change(change: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(MINIMAL))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = doc
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return doc


def test_the_minimal_mapping_loads(tmp_path: Path) -> None:
    spec = load_mapping(write(tmp_path, MINIMAL))
    assert spec.reader == "json"
    assert spec.tables["role"] == {"K": "rehabiliteringskoordinator"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reader": "edifact"}, "'reader': must be one of json, xml, csv"),
        ({"case.fields.shoe_size": "x"}, "'case.fields.shoe_size': unknown field"),
        ({"case.fields.personnummer": None}, "'case.fields.personnummer': is required"),
        ({"records.staff": None}, "'records.staff': is required"),
        (
            {"records.diagnoses": {"select": "d", "fields": {}}},
            "'records.diagnoses': unknown record kind",
        ),
        ({"tables.role": {"K": "chef"}}, "'tables.role.K': 'chef' is not one of"),
        ({"tables.role": None}, "'tables.role': is needed by staff.fields.title"),
        ({"tables.activity_code": {"X": {"kva": "ZZ999"}}}, "'ZZ999' is not a KVÅ code here"),
        ({"tables.activity_code": {"X": {"kva": "GC001", "part": "allt"}}}, "'allt' is not a part"),
        ({"case.fields.start": "start[["}, "'case.fields.start': 'start[[' is not a valid path"),
        ({"dates": {"timezone": "Mars/Olympus"}}, "'dates.timezone': unknown time zone"),
        ({"case.fields.status": {"paths": "s"}}, "unknown keys ['paths']"),
    ],
)
def test_mistakes_in_a_mapping_file_are_named(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(MappingSpecError, match=r"m\.yaml") as caught:
        load_mapping(write(tmp_path, with_change(change)))
    assert message in str(caught.value)


def test_a_bad_xpath_fails_at_load(tmp_path: Path) -> None:
    doc = with_change({"reader": "xml", "case.select": "//Arende[", "options": {"namespaces": {}}})
    with pytest.raises(MappingSpecError, match=r"'case.select': '//Arende\[' is not a valid path"):
        load_mapping(write(tmp_path, doc))


def test_a_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("reader: [json\n", encoding="utf-8")
    with pytest.raises(MappingSpecError, match=r"broken\.yaml: cannot read the mapping file"):
        load_mapping(path)


def test_mappings_are_found_by_name_or_path() -> None:
    assert resolve_mapping_path("nordjournal-json", MAPPINGS) == MAPPINGS / "nordjournal-json.yaml"
    by_path = resolve_mapping_path(str(MAPPINGS / "nordjournal-json.yaml"))
    assert by_path == MAPPINGS / "nordjournal-json.yaml"
    with pytest.raises(MappingSpecError, match="no mapping file 'nope'"):
        resolve_mapping_path("nope", MAPPINGS)


@pytest.mark.parametrize("path", sorted(MAPPINGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_mapping_loads(path: Path) -> None:
    assert load_mapping(path).name == path.stem
