"""``reko-fhir follow-ups``: wrong usage stops in one line with exit 2 (a real process), and the
rows render as a table, CSV and JSON. What it lists is proven on a real serve in
tests/api/test_followups_serve.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from reko_fhir.cli_followups import FollowUp, Format, render

ROWS = [
    FollowUp(date(2026, 3, 2), "AW026", "scheduled", "197804122385", "CarePlan/p1", 0, None),
    FollowUp(date(2026, 3, 16), "GC001", "scheduled", "197804122385", "CarePlan/p1", 1, "Samtal"),
]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--unit", "VC01", "--due-before", "2026-03-01"], "--unit is a care unit's HSA-id"),
        (["--unit", "SE2321000016-VC01", "--due-before", "mars"], "--due-before is a day"),
        (
            ["--unit", "SE2321000016-VC01", "--due-before", "2026-03-01", "--code", "DV077"],
            "--code is AW026 or GC001",
        ),
    ],
)
def test_wrong_usage_is_one_line_and_exit_2(options: list[str], named: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reko_fhir", "follow-ups", *options],
        env={**os.environ, "REKO_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"reko-fhir: {named}")
    assert done.stderr.count("\n") == 1
    assert done.stdout == ""


def test_the_rows_as_table_csv_and_json() -> None:
    today = date(2026, 3, 10)  # the first is overdue, the second not yet
    table = render(ROWS, Format.TABLE, today).splitlines()
    assert table[0].split() == [
        "due", "overdue", "code", "status", "patient", "careplan", "activity", "description",
    ]  # fmt: skip
    first = ["2026-03-02", "yes", "AW026", "scheduled", "197804122385", "CarePlan/p1", "0"]
    assert table[2].split() == first
    assert table[3].split()[:2] == ["2026-03-16", "GC001"]
    assert table[-1] == "2 follow-up(s) due"
    assert render(ROWS, Format.CSV, today).splitlines()[1:] == [
        "2026-03-02,yes,AW026,scheduled,197804122385,CarePlan/p1,0,",
        "2026-03-16,,GC001,scheduled,197804122385,CarePlan/p1,1,Samtal",
    ]
    rows = json.loads(render(ROWS, Format.JSON, today))
    assert [(r["due"], r["overdue"]) for r in rows] == [("2026-03-02", True), ("2026-03-16", False)]
    assert render([], Format.JSON, today) == "[]"
