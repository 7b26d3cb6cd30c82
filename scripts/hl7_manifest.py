"""How many R4 profile cases of the HL7 ``fhir-test-cases`` validator manifest reach the HL7 Java
validator's verdict (valid / invalid) with this validator.

Run by hand on a checkout of https://github.com/FHIR/fhir-test-cases (Apache-2.0; not vendored):
``python scripts/hl7_manifest.py path/to/fhir-test-cases/validator [--list]``.

In scope: cases of FHIR 4.0/4.0.1 with a ``profile`` step and a Java outcome for it, that need
no packages (no IG download: the validator is offline), with ``use-test`` not false, whose
instance and supporting files are present. Expected: the Java outcome's error and fatal issues
for the profile step (none: valid), as in ``shared/conformance``. Cases out of scope are
counted by reason.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from reko_fhir.validation.definitions import DefinitionError, Definitions, read_conformance_file
from reko_fhir.validation.validator import Validator
from reko_fhir.validation.xmljson import core_reader


def in_scope(case: dict[str, Any], folder: Path) -> str | None:
    """Why ``case`` is out of scope, or None."""
    if case.get("version") not in ("4.0", "4.0.1"):
        return "not R4"
    profile = case.get("profile")
    if not isinstance(profile, dict) or "source" not in profile or "java" not in profile:
        return "no profile step with a Java outcome"
    if case.get("packages") or profile.get("packages"):
        return "needs packages"
    if case.get("use-test") is False or profile.get("use-test") is False:
        return "use-test false"
    names = [case["file"], profile["source"], *supporting(case)]
    if not all((folder / n).is_file() for n in names):
        return "files missing"
    if isinstance(profile["java"], str) and not (folder / "outcomes" / profile["java"]).is_file():
        return "outcome missing"
    return None


def supporting(case: dict[str, Any]) -> list[str]:
    profile = case.get("profile") or {}
    return [
        *case.get("supporting", []),
        *case.get("profiles", []),
        *profile.get("supporting", []),
    ]


def expected_valid(case: dict[str, Any], folder: Path) -> bool:
    java = case["profile"]["java"]  # a file under outcomes/, or the outcome inline
    outcome = (
        java.get("outcome", java)
        if isinstance(java, dict)
        else json.loads((folder / "outcomes" / java).read_text("utf-8"))
    )
    return not [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def verdict(case: dict[str, Any], folder: Path) -> bool:
    definitions = Definitions.core()
    for name in [case["profile"]["source"], *supporting(case)]:
        definitions.add_all(read_conformance_file(folder / name))
    data = (folder / case["file"]).read_bytes()
    instance = core_reader().read(data) if data.lstrip()[:1] == b"<" else json.loads(data)
    structures = [
        r
        for r in read_conformance_file(folder / case["profile"]["source"])
        if r["resourceType"] == "StructureDefinition"
    ]
    if not structures:
        raise DefinitionError("the profile file has no StructureDefinition")
    kind = instance.get("resourceType")
    chosen = next((s for s in structures if s.get("type") == kind), structures[0])
    issues = Validator(definitions).validate(instance, str(chosen["url"]))
    return not [i for i in issues if i.is_error]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="the validator/ folder of fhir-test-cases")
    parser.add_argument("--list", action="store_true", help="print each case's result")
    args = parser.parse_args()
    manifest = json.loads((args.folder / "manifest.json").read_text("utf-8"))
    skipped: Counter[str] = Counter()
    agree, differ, failed = [], [], []
    for case in manifest["test-cases"]:
        reason = in_scope(case, args.folder)
        if reason:
            skipped[reason] += 1
            continue
        try:
            same = verdict(case, args.folder) == expected_valid(case, args.folder)
        except Exception as exc:  # a file this validator cannot read: counted, named
            failed.append(f"{case['name']}: {type(exc).__name__}: {exc}")
            continue
        (agree if same else differ).append(case["name"])
    total = len(agree) + len(differ) + len(failed)
    print(f"in scope: {total}; same verdict as the HL7 Java validator: {len(agree)}")
    print(f"different verdict: {len(differ)}; not readable here: {len(failed)}")
    print("out of scope: " + ", ".join(f"{n} {why}" for why, n in skipped.most_common()))
    if args.list:
        for name in differ:
            print(f"differs: {name}")
        for line in failed:
            print(f"failed: {line}")


if __name__ == "__main__":
    main()
