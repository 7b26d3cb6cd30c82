"""``reko-fhir worklist``: its settings and arguments fail as every command's do (one line,
exit 2), and its formats (the end-to-end run is in test_serve_worklist)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reko_fhir.cli_worklist import WorklistFormat, render
from reko_fhir.config import Settings
from reko_fhir.domain import RekoStatus
from reko_fhir.worklist import WorklistRow, WorklistSettings


def reko(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reko_fhir", *args],
        env={**os.environ, "REKO_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REKO_WORKLIST_MAX_DAYS_BETWEEN", "91"),
        ("REKO_WORKLIST_MAX_DAYS_BETWEEN", "-1"),
        ("REKO_WORKLIST_FOCUS_DAYS", "0"),
        ("REKO_WORKLIST_FOCUS_DAYS", "many"),
    ],
)
def test_a_bad_worklist_setting_is_one_line_and_exit_2(
    tmp_path: Path, variable: str, value: str
) -> None:
    answer = reko(tmp_path, "worklist", "--unit", "SE2321000016-VC01", **{variable: value})
    assert answer.returncode == 2, answer.stderr
    assert answer.stderr.count("\n") == 1
    assert variable in answer.stderr


def test_a_unit_that_is_no_hsa_id_is_exit_2(tmp_path: Path) -> None:
    answer = reko(tmp_path, "worklist", "--unit", "191212121212")
    assert answer.returncode == 2
    assert "HSA-id" in answer.stderr
    assert "191212121212" not in answer.stderr


def test_an_empty_store_has_an_empty_worklist(tmp_path: Path) -> None:
    answer = reko(tmp_path, "worklist", "--unit", "SE2321000016-VC01", "--format", "json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == []


def test_the_settings_reach_the_worklist() -> None:
    settings = Settings(worklist_max_days_between=14, worklist_focus_days=60)
    assert WorklistSettings.from_settings(settings) == WorklistSettings(14, 60)


ROWS = [
    WorklistRow("t1", "requested", "198001010014", "2026-02-10", 50, 21, RekoStatus.INGEN, None),
    WorklistRow("t2", "rejected", "198001010022", "2026-02-20", 100, 11, RekoStatus.AKTIV, "annan"),
]


def test_the_three_formats() -> None:
    table = render(ROWS, WorklistFormat.TABLE).splitlines()
    assert table[0].split()[:3] == ["Start", "Days", "Degree"]
    assert table[1].split() == [
        "2026-02-10",
        "21",
        "50",
        "198001010014",
        "requested",
        "ingen",
        "REKO_1",
    ]
    assert table[-1] == "2 sick leave(s)"
    csv_lines = render(ROWS, WorklistFormat.CSV).splitlines()
    assert csv_lines[0].split(",")[:3] == ["task", "status", "patient"]
    assert csv_lines[2].endswith("aktiv,REKO_3,annan")
    assert json.loads(render(ROWS, WorklistFormat.JSON))[1]["rehabstod_status"] == "REKO_3"
