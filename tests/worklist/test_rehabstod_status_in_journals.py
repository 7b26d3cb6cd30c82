"""REKO statuses from the national side: a journal export (or its status table) may name a
status by Rehabstöd's id (``REKO_3``) — the same mapping both ways as the worklist shows."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from reko_fhir.domain import RekoStatus
from reko_fhir.mapping.journal import MappingSpecError, load_mapping, map_export
from tests.mapping.test_journal_engine import CSV_MAPPING, HEADER, ROWS


def mapped_status(tmp_path: Path, status: str, table: dict[str, str]) -> RekoStatus:
    spec = copy.deepcopy(CSV_MAPPING)
    spec["tables"]["reko_status"] = table  # type: ignore[index]
    mapping = tmp_path / "csv.yaml"
    mapping.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    rows = [row.replace(";Enheten;A;", f";Enheten;{status};") for row in ROWS]
    result = map_export(load_mapping(mapping), "\n".join([HEADER, *rows]).encode(), "x.csv")
    assert [str(i) for i in result.issues] == []
    return result.cases[0].status


# The closed ones need an end date the sample case does not have.
@pytest.mark.parametrize("status", [s for s in RekoStatus if not s.is_closed])
def test_an_export_may_give_rehabstods_id(tmp_path: Path, status: RekoStatus) -> None:
    assert mapped_status(tmp_path, status.rehabstod_id, {"A": "aktiv"}) is status


def test_a_status_table_may_translate_to_rehabstods_id(tmp_path: Path) -> None:
    assert mapped_status(tmp_path, "A", {"A": "REKO_4"}) is RekoStatus.UPPFOLJNING


def test_an_id_rehabstod_does_not_have_is_refused(tmp_path: Path) -> None:
    spec = copy.deepcopy(CSV_MAPPING)
    spec["tables"]["reko_status"] = {"A": "REKO_9"}  # type: ignore[index]
    mapping = tmp_path / "csv.yaml"
    mapping.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(MappingSpecError, match="REKO_9"):
        load_mapping(mapping)
