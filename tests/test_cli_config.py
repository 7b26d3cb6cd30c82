"""Every command fails the same way on a bad configuration (issue 12, points 2 and 7).

One line on stderr naming the file (or variable) and the problem, exit 2, no traceback: for
``serve``, ``worker``, ``pull`` and every other command, each run as a real process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from reko_fhir import cli_preflight
from reko_fhir.api import create_app
from reko_fhir.cli import app
from reko_fhir.config import Settings
from reko_fhir.validation import service
from reko_fhir.validation.service import ProfilesNotFoundError, reko_definitions
from tests.golden import FIXTURES

PNR, UNIT = "191212121212", "SE2321000016-VC01"
EXPORT = FIXTURES / "mapping" / "a-primary-care" / "input.nordjournal-json.json"
# Each command with arguments it would run with; a command added to the CLI must be added here.
COMMANDS: dict[str, list[str]] = {
    "serve": ["serve", "--port", "18999"],
    "worker": ["worker", "--once"],
    "pull": ["pull", "--target", "ehr-north", "--unit", "SE2321000016-VC01"],
    "map": ["map", "-m", "nordjournal-json", str(EXPORT)],
    "validate": ["validate", str(FIXTURES / "valid")],
    "token": ["token", "--scope", "user/*.rs", "--unit", "SE2321000016-VC01"],
    "outbox list": ["outbox", "list"],
    "outbox show": ["outbox", "show", "1"],
    "outbox retry": ["outbox", "retry", "--all"],
    "outbox purge": ["outbox", "purge"],
    "worklist": ["worklist", "--unit", "SE2321000016-VC01"],
    "sick-leaves import": ["sick-leaves", "import", "--unit", "SE2321000016-VC01"],
    "sick-leaves history": ["sick-leaves", "history", "--unit", UNIT, "--patient", PNR],
    "stats": ["stats", "--unit", "all", "--from", "2026-01", "--to", "2026-06"],
    "follow-ups": ["follow-ups", "--unit", "SE2321000016-VC01", "--due-before", "2026-03-01"],
    "reindex": ["reindex", "--type", "CarePlan"],
}
BAD_FILES = {
    "unknown key": (
        "targets:\n  - name: ehr-north\n    base_url: https://ehr.example.se/fhir\n    colour: red\n",
        "targets.0.colour: Extra inputs are not permitted",
    ),
    "not YAML": ("targets: [\n  - name: x\n", "is not YAML"),
    "missing key file": (
        "targets:\n  - name: ehr-north\n    base_url: https://ehr.example.se/fhir\n"
        "    auth: {type: private_key_jwt, token_url: https://ehr.example.se/token,"
        " client_id: reko, key_file: keys/none.pem, kid: k1}\n",
        "target ehr-north: auth.key_file keys/none.pem: no such file",
    ),
}


def command_names(group: Any, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer's own click types)
            names += command_names(command, f"{prefix}{name} ")
        else:
            names.append(prefix + name)
    return sorted(names)


def test_every_command_of_the_cli_is_checked() -> None:
    assert command_names(typer.main.get_command(app)) == sorted(COMMANDS)


# Each case: the command, its environment, what stderr must name. All run at once (each process
# pays the CLI's start-up; in parallel the module takes seconds, not a minute).
CASES: dict[str, tuple[str, dict[str, str], list[str]]] = {
    **{
        f"{command}, unknown key": (command, {"file": "unknown key"}, [BAD_FILES["unknown key"][1]])
        for command in COMMANDS
    },
    **{
        f"{command}, {kind}": (command, {"file": kind}, [BAD_FILES[kind][1]])
        for command in ("serve", "worker", "pull")
        for kind in ("not YAML", "missing key file")
    },
    **{
        f"{command}, missing file": (
            command,
            {"REKO_TARGETS_FILE": "nowhere.yaml"},
            ["cannot read the targets file nowhere.yaml"],
        )
        for command in ("serve", "worker", "pull")
    },
    **{
        f"{command}, missing national file": (
            command,
            {"REKO_NATIONAL_FILE": "nowhere.yaml"},
            ["cannot read the national file nowhere.yaml"],
        )
        for command in ("serve", "worker", "sick-leaves import")
    },
    **{
        f"{command}, bad setting": (
            command,
            {"REKO_WORKERS": "many"},
            ["REKO_WORKERS: Input should be a valid integer"],
        )
        for command in ("serve", "worker", "pull")
    },
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str, str]]:
    """Each case's exit code, stdout, stderr and the targets file it was given."""
    running = {}
    for case, (command, settings, _) in CASES.items():
        folder = tmp_path_factory.mktemp("cli")
        env = {**os.environ, "REKO_DATA_DIR": str(folder / "data")}
        env.pop("REKO_TARGETS_FILE", None)
        named = ""
        if "file" in settings:
            named = str(folder / "targets.yaml")
            Path(named).write_text(BAD_FILES[settings["file"]][0], encoding="utf-8")
            env["REKO_TARGETS_FILE"] = named
        env.update({k: v for k, v in settings.items() if k != "file"})
        process = subprocess.Popen(
            [sys.executable, "-m", "reko_fhir", *COMMANDS[command]],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running[case] = (process, named)
    finished = {}
    for case, (process, named) in running.items():
        out, err = process.communicate(timeout=120)
        finished[case] = (process.returncode, out, err, named)
    return finished


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_configuration_stops_the_command_in_one_line(
    case: str, answers: dict[str, tuple[int, str, str, str]]
) -> None:
    code, out, err, named = answers[case]
    assert code == 2, (code, err)
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith("reko-fhir: ")
    for words in [named, *CASES[case][2]]:
        assert words in err
    assert out == ""


def test_without_profiles_the_service_refuses_to_build_its_validator(tmp_path: Path) -> None:
    with pytest.raises(ProfilesNotFoundError, match="no reko profiles"):
        reko_definitions(profiles_dir=tmp_path / "missing")
    with pytest.raises(ProfilesNotFoundError, match="holds no RekoPatient profile"):
        reko_definitions(profiles_dir=tmp_path)  # a folder, but empty


async def test_without_profiles_the_app_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "PROFILES_DIR", tmp_path)
    app = create_app(Settings(data_dir=tmp_path / "data"))
    with pytest.raises(ProfilesNotFoundError, match="no reko profiles"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / "data").exists(), "refused before the store opened"


@pytest.mark.parametrize("command", ["serve", "validate", "worker", "pull"])
def test_without_profiles_no_command_starts(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process (the installed case runs in tests/test_install.py): one line, exit 2."""
    monkeypatch.setattr(cli_preflight, "PROFILES_DIR", tmp_path)
    monkeypatch.setenv("REKO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REKO_TARGETS_FILE", raising=False)
    result = CliRunner().invoke(app, COMMANDS[command])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"reko-fhir: no reko profiles in {tmp_path}")
    assert result.stderr.count("\n") == 1
