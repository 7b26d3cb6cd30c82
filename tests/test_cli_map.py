"""``reko-fhir map`` against the golden fixtures: every case, every export format, JSON and XML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reko_fhir.cli import app
from tests.golden import FIXTURES, assert_golden, mapping_inputs, mapping_of

runner = CliRunner()


def run_map(input_path: Path, fmt: str = "json", *extra: str) -> tuple[int, bytes, str]:
    result = runner.invoke(
        app,
        ["map", "--mapping", str(mapping_of(input_path)), str(input_path), "--format", fmt, *extra],
    )
    return result.exit_code, result.stdout_bytes, result.stderr


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("input_path", list(mapping_inputs("mapping")))
def test_map_reproduces_the_golden_bundle(input_path: Path, fmt: str) -> None:
    code, out, err = run_map(input_path, fmt)
    assert code == 0, err
    assert "error" not in err
    assert_golden(out, input_path.parent / f"expected.{fmt}")


@pytest.mark.parametrize("input_path", list(mapping_inputs("mapping-errors")))
def test_bad_input_exits_1_names_the_place_and_writes_nothing(input_path: Path) -> None:
    code, out, err = run_map(input_path)
    assert code == 1
    assert out == b"", "no partial output on bad input"
    assert "Traceback" not in err
    assert_golden(err.encode(), input_path.parent / "expected-stderr.txt")


def test_output_is_byte_stable_across_processes() -> None:
    """Hash seeds differ between processes; the Bundle bytes must not."""
    source = FIXTURES / "mapping" / "b-psychiatry-revoked-consent" / "input.nordjournal-json.json"
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reko_fhir",
                "map",
                "-m",
                str(mapping_of(source)),
                str(source),
                "--format",
                "xml",
            ],
            capture_output=True,
            env=env,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert outputs.pop().startswith(b"<?xml")


def test_unknown_mapping_is_a_usage_error() -> None:
    source = FIXTURES / "mapping" / "a-primary-care" / "input.nordjournal-json.json"
    result = runner.invoke(app, ["map", "--mapping", "no-such-vendor", str(source)])
    assert result.exit_code == 2
    assert "no mapping file 'no-such-vendor'" in result.stderr


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["map", "-m", "nordjournal-json", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "no input file" in result.stderr


def test_several_cases_need_an_out_dir(tmp_path: Path) -> None:
    source = FIXTURES / "mapping" / "a-primary-care" / "input.nordjournal-json.json"
    doc = json.loads(source.read_text(encoding="utf-8"))
    twin = json.loads(json.dumps(doc["cases"][0]).replace("REKO-2025-0042", "REKO-2025-0043"))
    doc["cases"].append(twin)
    two = tmp_path / "two.json"
    two.write_text(json.dumps(doc), encoding="utf-8")
    result = runner.invoke(app, ["map", "-m", str(mapping_of(source)), str(two)])
    assert result.exit_code == 2
    assert "holds 2 cases" in result.stderr
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["map", "-m", str(mapping_of(source)), str(two), "--out-dir", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["REKO-2025-0042.json", "REKO-2025-0043.json"]
