"""The repository carries everything its tests, scripts and documents read (issue 12, point 1).

A fresh clone has no ``../shared/`` beside it: no file of the project may reach there. CI proves
the same by running the suite from a copy of the checkout with no ``shared/`` beside it
(``.ci/run``); this test names the offending line at once.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.golden import CONFORMANCE_CASES, ROOT

SCANNED = ("src", "tests", "scripts", "bench", "docs", "profiles", "mappings", ".ci", "README.md")
# A path into the workplace's shared folder, however spelled: "../shared/rivta", "shared/spec/…",
# Path(…) / "shared" / "conformance".
REACHES_SHARED = re.compile(
    r"""(\.\./shared\b|\bshared/(conformance|rivta|spec|seeds)\b|["']shared["']\s*/)"""
)


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *SCANNED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (e.g. an unpacked sdist): walk the tree
        return [
            str(p.relative_to(ROOT))
            for top in SCANNED
            for p in ([ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*"))
            if p.is_file()
            and not {"node_modules", "__pycache__"} & set(p.parts)
            and ".egg-info" not in str(p)
        ]
    return listed.stdout.splitlines()


def test_no_file_of_the_project_reads_the_shared_folder() -> None:
    this = "tests/test_self_contained.py"
    offending = []
    for name in tracked_files():
        path = ROOT / name
        if name == this or not path.is_file() or path.suffix in {".gz", ".pem", ".pyc"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offending += [
            f"{name}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if REACHES_SHARED.search(line)
        ]
    assert offending == []


@pytest.mark.parametrize(
    ("folder", "licence"),
    [
        (CONFORMANCE_CASES.parent, "LICENSE-fhir-test-cases.txt"),
        (ROOT / "src" / "reko_fhir" / "delivery" / "rivta" / "xsd", "LICENSE-sklintyg-schemas.md"),
    ],
)
def test_vendored_files_keep_their_licence_beside_them(folder: Path, licence: str) -> None:
    text = (folder / licence).read_text(encoding="utf-8")
    expected = "Apache License" if licence.endswith(".txt") else "LESSER GENERAL PUBLIC LICENSE"
    assert expected in text


def test_the_profile_contract_is_a_document_of_the_project() -> None:
    contract = ROOT / "profiles" / "contract.md"
    assert contract.read_text(encoding="utf-8").startswith("# The reko profile contract")
    assert "(contract.md)" in (ROOT / "profiles" / "README.md").read_text(encoding="utf-8")


def test_the_vendored_cases_are_all_there() -> None:
    folders = [p for p in CONFORMANCE_CASES.iterdir() if p.is_dir()]
    assert len(folders) >= 17
    assert all((p / "case.json").is_file() for p in folders)
