"""Adding a journal system needs only a mapping file: a fourth one, written only for this test."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from reko_fhir.cli import app
from reko_fhir.domain import ActorType, CoordinationPart, KvaCode, PatientIdKind, RekoStatus
from reko_fhir.mapping.journal import load_mapping, map_file

HERE = Path(__file__).parent / "fourth_system"


def test_a_fourth_mapping_file_maps_its_export_without_code_changes() -> None:
    result = map_file(load_mapping(HERE / "kustjournal.yaml"), HERE / "export.json")

    assert [str(i) for i in result.issues] == []
    (case,) = result.cases
    assert case.source.system == "urn:oid:1.2.752.9999.1.7"
    assert case.source.record_id == "K-77"
    assert case.patient.id.kind is PatientIdKind.SAMORDNINGSNUMMER
    assert case.status is RekoStatus.AKTIV
    assert case.care_unit.name == "Hälsocentralen Kusten"
    assert [a.actor_type for a in case.actors] == [ActorType.FORSAKRINGSKASSAN]
    assert [(a.source.record_id, a.kva, a.part) for a in case.activities] == [
        ("I-1", KvaCode.GC001, CoordinationPart.PERSONLIGT_STOD),
        ("I-2", KvaCode.GC001, CoordinationPart.EXTERN_SAMVERKAN),
    ]
    # "05.06.2025 13.45" is local Swedish time: summer time, +02:00.
    assert case.activities[1].performed.isoformat() == "2025-06-05T13:45:00+02:00"


def test_the_cli_turns_the_fourth_export_into_a_transaction_bundle() -> None:
    result = CliRunner().invoke(
        app, ["map", "--mapping", str(HERE / "kustjournal.yaml"), str(HERE / "export.json")]
    )

    assert result.exit_code == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert bundle["type"] == "transaction"
    urls = [e["request"]["url"] for e in bundle["entry"]]
    assert "Procedure?identifier=urn:oid:1.2.752.9999.1.7|I-2" in urls
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])
    types = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert types.count("Procedure") == 2
    assert types.count("Consent") == 1


def test_an_unknown_local_code_in_the_fourth_export_is_named(tmp_path: Path) -> None:
    export = json.loads((HERE / "export.json").read_text(encoding="utf-8"))
    export["poster"][5]["åtgärd"] = "X"
    broken = tmp_path / "export.json"
    broken.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")

    result = map_file(load_mapping(HERE / "kustjournal.yaml"), broken)

    assert result.cases == []
    assert [str(i) for i in result.errors] == [
        "error: export.json: poster[?typ=='insats'][1] (I-2), field '\"åtgärd\"': "
        "unknown local code 'X' (table activity_code)"
    ]
