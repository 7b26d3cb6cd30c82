"""Golden-file helpers: fixture cases are discovered from folders, never listed by hand.

``REKO_UPDATE_GOLDEN=1 pytest …`` writes a missing expected file instead of failing, so a new
case gets its golden output once; a person reads it before it is committed. Existing expected
files are never overwritten: changing one is a deliberate edit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.validation.inputs import InputError, iter_inputs

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MAPPINGS = ROOT / "mappings"
CONFORMANCE_CASES = ROOT / "tests" / "conformance" / "fhir-test-cases"
"""HL7 validator cases, vendored (Apache-2.0, ``tests/conformance/README.md``)."""


def mapping_inputs(folder: str) -> Iterator[object]:
    """One pytest param per ``fixtures/<folder>/<case>/input.<mapping>.<ext>``."""
    for case in sorted(p for p in (FIXTURES / folder).iterdir() if p.is_dir()):
        for path in sorted(case.glob("input.*")):
            yield pytest.param(path, id=f"{case.name}/{path.name}")


def fhir_fixtures() -> list[tuple[str, Any]]:
    """Every resource in every readable FHIR file under ``fixtures/`` (JSON, XML, NDJSON), with
    where it was read (``valid/x.json``, ``…/y.ndjson:3``); journal exports are left out."""
    found: list[tuple[str, Any]] = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix not in (".json", ".xml", ".ndjson") or not path.is_file():
            continue
        try:
            items = list(iter_inputs(path))
        except InputError:
            continue  # a journal export, not FHIR
        found += [(item.source.split("fixtures/", 1)[-1], item.resource) for item in items]
    return found


def mapping_of(input_path: Path) -> Path:
    """``input.nordjournal-json.json`` is mapped with ``mappings/nordjournal-json.yaml``."""
    return MAPPINGS / f"{input_path.name.split('.')[1]}.yaml"


def assert_golden(actual: bytes, expected_path: Path) -> None:
    if not expected_path.exists():
        if os.environ.get("REKO_UPDATE_GOLDEN") == "1":
            expected_path.write_bytes(actual)
            pytest.skip(f"wrote new golden file {expected_path.name}: read it, then commit it")
        pytest.fail(f"missing golden file {expected_path} (REKO_UPDATE_GOLDEN=1 writes it)")
    assert actual == expected_path.read_bytes(), f"output differs from {expected_path}"
