"""Offline R4 core definitions and snapshot generation from differentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.validation.definitions import Definitions, read_conformance_file
from reko_fhir.validation.snapshot import SnapshotError, generate_snapshot, split_id
from tests.golden import CONFORMANCE_CASES

CONFORMANCE = CONFORMANCE_CASES
CORE = Definitions.core()


def profiles() -> list[Any]:
    found = []
    for case in sorted(CONFORMANCE.iterdir()):
        for path in sorted(case.glob("*.json")):
            if path.name == "case.json":
                continue
            for resource in read_conformance_file(path):
                if resource["resourceType"] == "StructureDefinition":
                    found.append(pytest.param(resource, id=f"{case.name}/{path.name}"))
    return found


def test_the_r4_core_is_available_offline() -> None:
    patient = CORE.base_of_type("Patient")
    assert patient is not None
    assert patient["snapshot"]["element"][0]["id"] == "Patient"
    assert CORE.base_of_type("Identifier") is not None
    assert "http://hl7.org/fhir/ValueSet/administrative-gender" in CORE.value_sets
    assert "http://hl7.org/fhir/administrative-gender" in CORE.code_systems
    constraints = {
        c["key"] for e in patient["snapshot"]["element"] for c in e.get("constraint", [])
    }
    assert "ele-1" in constraints


def test_a_bundle_of_conformance_resources_yields_only_those(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "CodeSystem",
                    "url": "http://x/cs",
                    "status": "active",
                    "content": "complete",
                }
            },
            {"resource": {"resourceType": "Patient"}},
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    assert [r["resourceType"] for r in read_conformance_file(path)] == ["CodeSystem"]


@pytest.mark.parametrize("profile", profiles())
def test_every_conformance_profile_gets_a_snapshot_with_its_differential(
    profile: dict[str, Any],
) -> None:
    elements = generate_snapshot(profile, CORE)
    snapshot = {e["id"]: e for e in elements}
    for diff in profile["differential"]["element"]:
        if "id" not in diff:  # old style, path only: the constrained values must land somewhere
            keys = [k for k in diff if k.startswith(("fixed", "pattern", "minValue", "maxValue"))]
            assert all(any(e.get(k) == diff[k] for e in elements) for k in keys)
            continue
        element = snapshot[diff["id"]]
        for key in ("min", "max", "sliceName"):
            if key in diff:
                assert element[key] == diff[key], (diff["id"], key)
        for key in [k for k in diff if k.startswith(("fixed", "pattern", "minValue"))]:
            assert element[key] == diff[key]


def test_a_path_into_a_data_type_unrolls_that_type() -> None:
    profile = {
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {
            "element": [
                {"id": "Patient.identifier.system", "path": "Patient.identifier.system", "min": 1}
            ]
        },
    }
    snapshot = {e["id"]: e for e in generate_snapshot(profile, CORE)}
    assert snapshot["Patient.identifier.system"]["min"] == 1
    assert snapshot["Patient.identifier.value"]["path"] == "Patient.identifier.value"
    assert "Patient.identifier.period" in snapshot


def test_a_slice_copies_its_element_with_children_and_constraints_add_up() -> None:
    profile = {
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Procedure",
        "differential": {
            "element": [
                {
                    "id": "Procedure.extension",
                    "path": "Procedure.extension",
                    "slicing": {
                        "rules": "open",
                        "discriminator": [{"type": "value", "path": "url"}],
                    },
                },
                {
                    "id": "Procedure.extension:actor",
                    "path": "Procedure.extension",
                    "sliceName": "actor",
                    "max": "3",
                },
                {
                    "id": "Procedure.extension:actor.url",
                    "path": "Procedure.extension.url",
                    "fixedUri": "http://x/actor",
                },
                {
                    "id": "Procedure",
                    "path": "Procedure",
                    "constraint": [
                        {"key": "x-1", "severity": "error", "human": "h", "expression": "true"}
                    ],
                },
            ]
        },
    }
    elements = generate_snapshot(profile, CORE)
    ids = [e["id"] for e in elements]
    snapshot = {e["id"]: e for e in elements}
    assert snapshot["Procedure.extension:actor"]["max"] == "3"
    assert "slicing" not in snapshot["Procedure.extension:actor"]
    assert snapshot["Procedure.extension:actor.url"]["fixedUri"] == "http://x/actor"
    assert ids.index("Procedure.extension:actor") == ids.index("Procedure.extension") + 1 + sum(
        1 for i in ids if i.startswith("Procedure.extension.")
    )
    keys = [c["key"] for c in snapshot["Procedure"]["constraint"]]
    assert "dom-2" in keys
    assert keys[-1] == "x-1"


def test_an_unknown_element_is_an_error() -> None:
    profile = {
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [{"id": "Patient.shoeSize", "path": "Patient.shoeSize"}]},
    }
    with pytest.raises(SnapshotError, match=r"Patient\.shoeSize"):
        generate_snapshot(profile, CORE)


def test_ids_split_at_dots_outside_slice_names() -> None:
    assert split_id("Bundle.entry:slice1.resource") == ["Bundle", "entry:slice1", "resource"]
    assert split_id("Observation.value[x]:valueQuantity.value") == [
        "Observation",
        "value[x]:valueQuantity",
        "value",
    ]
