"""The sick-leave feed's tests: a national file pointing at the loopback RIVTA stub, and the
``reko-fhir`` CLI run as a real process against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.peers.rivta_stub import DIAGNOSES, RivtaStub, rivta_stub

LOGICAL_ADDRESS = "SE2321000016-INTYG"


def national_file(
    folder: Path,
    url: str,
    units: Iterable[str],
    *,
    retry: dict[str, float] | None = None,
    schedule: dict[str, object] | None = None,
) -> Path:
    """A national file routing ``units`` to the stub, with quick retries."""
    addresses = {unit: LOGICAL_ADDRESS for unit in units}
    contract = {
        "base_url": url,
        "logical_addresses": addresses,
        "retry": retry or {"max_attempts": 3, "initial_wait": 0.01, "longest_wait": 0.05},
    }
    document: dict[str, object] = {
        "contracts": {
            "ListActiveSickLeavesForCareUnit": contract,
            "ListSickLeavesForCare": contract,
        }
    }
    if schedule is not None:
        document["schedule"] = schedule
    path = folder / "national.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``reko-fhir ARGS`` as a process with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "reko_fhir", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_no_diagnosis(text: str, where: str) -> None:
    found = [d for d in DIAGNOSES if d in text]
    assert found == [], f"diagnoses {found} in {where}"


@pytest.fixture
def stub() -> Iterator[RivtaStub]:
    """The producer; every request it took followed the contract's XSD (it refuses others)."""
    with rivta_stub() as running:
        yield running
    assert running.rejected == [], [e.problems for e in running.rejected]
