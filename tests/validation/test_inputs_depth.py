"""NDJSON records: nested too deep refused, whatever shortcut the depth check takes; read as json reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reko_fhir.formats import MAX_JSON_DEPTH
from reko_fhir.validation.inputs import InputError, read_inputs


def nested(levels: int) -> dict[str, object]:
    """A Basic resource whose extension nests ``levels`` objects deep in all."""
    inner: dict[str, object] = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(levels - 2):
        inner = {"url": "http://example.org/x", "extension": [inner]}
    return {"resourceType": "Basic", "extension": [inner]}


def write(tmp_path: Path, *records: object) -> Path:
    path = tmp_path / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("position", [0, 1])
def test_a_deep_record_is_refused(tmp_path: Path, position: int) -> None:
    records: list[object] = [{"resourceType": "Basic"}, {"resourceType": "Basic"}]
    records[position] = nested(MAX_JSON_DEPTH)
    with pytest.raises(InputError, match="nested deeper"):
        read_inputs(write(tmp_path, *records))


def test_brackets_in_strings_do_not_refuse_a_shallow_record(tmp_path: Path) -> None:
    shallow = {"resourceType": "Basic", "id": "x", "text": {"div": "{[" * MAX_JSON_DEPTH}}
    found = read_inputs(write(tmp_path, shallow, {"resourceType": "Basic"}))
    assert [i.resource for i in found] == [shallow, {"resourceType": "Basic"}]


def test_a_record_just_within_the_depth_is_read(tmp_path: Path) -> None:
    record = nested(MAX_JSON_DEPTH // 2 - 1)
    found = read_inputs(write(tmp_path, record, {"resourceType": "Basic"}))
    assert found[0].resource == record


def test_records_read_as_json_reads_them(tmp_path: Path) -> None:
    """The fast reader and json give the same values; what it refuses json still reads."""
    lines = [
        '{"resourceType": "Basic", "id": "a", "extension": [{"url": "u", "valueDecimal": 1.50}]}',
        '{"resourceType": "Basic", "id": "\\ud800"}',  # a lone surrogate: json reads it
        '\ufeff{"resourceType": "Basic", "id": "b"}',  # a BOM before a record
        '{"resourceType": "Basic", "id": "c", "text": {"div": "\\u00e9 \\ud83d\\ude00"}}',
    ]
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = [i.resource for i in read_inputs(path)]
    assert found == [json.loads(line.removeprefix("\ufeff")) for line in lines]


def test_a_broken_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "records.ndjson"
    path.write_text('{"resourceType": "Basic"}\n{"resourceType": "Basic",}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"records.ndjson:2: not readable"):
        read_inputs(path)
