"""The FHIR package in profiles/: complete against the contract, in step with its build script,
and its invariants agree with what the mapping writes."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from typing import Any

import pytest
from fhirpathpy import compile as fhirpath
from fhirpathpy.models import models

from tests.golden import FIXTURES, ROOT

PROFILES = ROOT / "profiles"
CONTRACT = PROFILES / "contract.md"
BASE = "http://reko-fhir.se/fhir"


def package() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in PROFILES.glob("*.json")}


def contract_section(title: str) -> list[list[str]]:
    """The table rows of a section of the contract, cells split."""
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and "---" not in line]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_package_manifest_depends_on_r4_core() -> None:
    manifest = package()["package.json"]
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}


def test_every_code_system_and_code_of_the_contract_exists() -> None:
    # A cell lists the codes, then (after ';') what they carry.
    wanted = {
        ticked(row[0])[0]: ticked(row[1].split(";")[0])
        for row in contract_section("Local code systems")
    }
    more = re.findall(
        r"`(reko-[a-z-]+)`\s+\(`([a-z0-9-]+)`\)", CONTRACT.read_text(encoding="utf-8")
    )
    wanted.update({cs: [code] for cs, code in more})
    assert len(wanted) == 11
    files = package()
    for cs_id, codes in wanted.items():
        cs = files[f"CodeSystem-{cs_id}.json"]
        assert cs["url"] == f"{BASE}/CodeSystem/{cs_id}"
        assert [c["code"] for c in cs["concept"]] == codes
        assert files[f"ValueSet-{cs_id}.json"]["compose"]["include"] == [{"system": cs["url"]}]


def test_every_reko_status_carries_rehabstods_id_in_order() -> None:
    cs = package()["CodeSystem-reko-status.json"]
    assert [p["code"] for p in cs["property"]] == ["rehabstod-id"]
    ids = [c["property"] for c in cs["concept"]]
    assert ids == [[{"code": "rehabstod-id", "valueString": f"REKO_{n}"}] for n in range(1, 9)]
    assert cs["concept"][0]["code"] == "ingen"


def test_the_contract_text_is_contract_2() -> None:
    assert CONTRACT.read_text(encoding="utf-8").startswith(
        "# The reko profile contract (FHIR R4 4.0.1) — contract 2"
    )
    assert package()["package.json"]["version"] == "0.2.0"


def test_the_worklist_profile_and_the_statistics_measure_exist() -> None:
    files = package()
    task = files["StructureDefinition-RekoWorklistTask.json"]
    assert task["type"] == "Task"
    assert task["snapshot"]["element"][0]["path"] == "Task"
    measure = files["Measure-kva-statistik.json"]
    assert measure["url"] == f"{BASE}/Measure/kva-statistik"
    groups = [g["code"]["coding"][0]["code"] for g in measure["group"]]
    wanted = {ticked(r[0])[0]: ticked(r[1]) for r in contract_section("Local code systems")}
    assert groups == wanted["reko-measure-group"]


def test_every_extension_and_profile_of_the_contract_exists_with_a_snapshot() -> None:
    files = package()
    extensions = [
        ticked(row[0])[0]
        for row in contract_section("Extensions (`{base}/StructureDefinition/{id}`)")
    ]
    profiles = [
        ticked(row[0])[0]
        for row in contract_section(
            "Profiles and what each requires (min cardinalities and fixed values; all else open)"
        )
    ]
    assert len(extensions) == 5
    assert len(profiles) == 9
    for name in extensions + profiles:
        sd = files[f"StructureDefinition-{name}.json"]
        assert sd["url"] == f"{BASE}/StructureDefinition/{name}"
        assert sd["differential"]["element"]
        assert sd["snapshot"]["element"][0]["path"] == sd["type"]


def test_the_committed_package_is_what_the_build_script_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_profiles", ROOT / "scripts" / "build_profiles.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build()
    committed = package()
    assert sorted(built) == sorted(committed)
    for name, resource in built.items():
        assert json.loads(json.dumps(resource)) == committed[name], (
            f"{name} drifted: rerun the script"
        )


def invariants() -> dict[str, list[tuple[str, str, Any]]]:
    """reko-* invariants per resource type: (key, element path, compiled expression)."""
    found: dict[str, list[tuple[str, str, Any]]] = {}
    for name, sd in package().items():
        if not name.startswith("StructureDefinition-"):
            continue
        for element in sd["snapshot"]["element"]:
            for c in element.get("constraint", []):
                if c["key"].startswith("reko-"):
                    found.setdefault(sd["type"], []).append(
                        (c["key"], element["path"], fhirpath(c["expression"], models["r4"]))
                    )
    return found


CHECKS = invariants()


def failing(resource: dict[str, Any], kind: str | None = None) -> set[str]:
    """Keys of the reko invariants ``resource`` breaks (extensions checked where they stand)."""
    broken = set()
    for key, path, check in CHECKS.get(kind or resource["resourceType"], []):
        relative = path.split(".", 1)[1] if "." in path else None
        nodes = [resource] if relative is None else fhirpath(relative, models["r4"])(resource)
        broken.update(key for node in nodes if check(node) != [True])
    if kind is None:
        for ext in resource.get("extension", []):
            if ext["url"] == f"{BASE}/StructureDefinition/sick-leave-period":
                broken |= failing(ext, "Extension")
    return broken


@pytest.mark.parametrize("case", sorted(p.name for p in (FIXTURES / "mapping").iterdir()))
def test_every_golden_resource_keeps_every_reko_invariant(case: str) -> None:
    bundle = json.loads((FIXTURES / "mapping" / case / "expected.json").read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        assert failing(entry["resource"]) == set(), entry["request"]["url"]


def golden(kind: str, record: str) -> dict[str, Any]:
    bundle = json.loads(
        (FIXTURES / "mapping" / "b-psychiatry-revoked-consent" / "expected.json").read_text(
            encoding="utf-8"
        )
    )
    return copy.deepcopy(
        next(
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == kind
            and e["resource"]["identifier"][0]["value"] == record
        )
    )


def test_invariants_catch_what_the_contract_forbids() -> None:
    meeting = golden("Procedure", "J-91188")
    meeting.pop("extension")
    assert failing(meeting) == {"reko-proc-3"}
    meeting["category"]["coding"] = []
    assert failing(meeting) == {"reko-proc-2"}
    revoked = golden("Consent", "SAM-0117-2")
    del revoked["provision"]["period"]["end"]
    assert failing(revoked) == {"reko-con-1"}
    episode = golden("EpisodeOfCare", "REKO-2025-0117")
    episode["extension"][1]["extension"][2]["valuePositiveInt"] = 60
    assert failing(episode) == {"reko-slp-1"}
    plan = golden("CarePlan", "PLAN-0117-1")
    plan["activity"][0]["detail"]["code"]["coding"][0]["code"] = "GC001"
    assert failing(plan) == {"reko-cp-1"}
