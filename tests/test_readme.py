"""The README's walkthrough runs as written (issue 12, point 9).

Every ` ```bash walkthrough` block runs in a fresh ``bash`` (``set -eo pipefail``, no venv
activated, a bare ``PATH``) from a folder that looks like the repository root, against a real
``reko-fhir serve`` started as the first set-up command starts it. The only change made to a
block is the port: ``localhost:8080`` becomes a free one, so that a service already running on
the machine is not the one answering. A ``text`` block that starts with ``$ `` is a transcript:
its command runs and its output must be the block's.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.golden import ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    info: str
    text: str
    line: int


def blocks() -> list[Block]:
    readme = README.read_text(encoding="utf-8")
    return [
        Block(m.group(1).strip(), m.group(2), readme.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(readme)
    ]


WALKTHROUGH = [b for b in blocks() if b.info == "bash walkthrough"]
TRANSCRIPTS = [b for b in blocks() if b.info == "text" and b.text.startswith("$ ")]


def commands(block: Block) -> list[str]:
    """The block's commands, continuation lines joined and comments dropped."""
    joined = block.text.replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


def test_the_readme_has_runnable_blocks() -> None:
    assert len(WALKTHROUGH) >= 4
    assert TRANSCRIPTS


@pytest.mark.parametrize(
    "block", [b for b in blocks() if b.info.startswith("bash")], ids=lambda b: f"line {b.line}"
)
def test_no_shell_block_needs_an_activated_venv(block: Block) -> None:
    """A fresh shell has no ``reko-fhir``, ``python`` or ``pytest`` on its PATH."""
    for command in commands(block):
        for word in re.split(r"[|&;()$]+|\s+", command):
            assert word not in {"reko-fhir", "python", "pytest", "pip"}, (block.line, command)


def test_inline_commands_name_the_venv() -> None:
    readme = README.read_text(encoding="utf-8")
    assert re.findall(r"`python (bench|scripts)/", readme) == []


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that looks like the repository root but keeps its own ``.reko`` data."""
    folder = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name not in {".reko", ".git", "validation.xml"}:
            (folder / entry.name).symlink_to(entry)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_env(folder: Path) -> dict[str, str]:
    """A new login's environment: no venv, no REKO_ settings of the test run."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def service(checkout: Path) -> Iterator[int]:
    port = free_port()
    log = (checkout / "serve.log").open("wb")
    server = subprocess.Popen(
        [".venv/bin/reko-fhir", "serve", "--port", str(port)],
        cwd=checkout,
        env=fresh_env(checkout),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (checkout / "serve.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "reko-fhir serve did not answer in 60 s"
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def run_block(block: Block, folder: Path, port: int) -> str:
    script = block.text.replace("localhost:8080", f"localhost:{port}")
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=folder,
        env=fresh_env(folder),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"README line {block.line}:\n{done.stdout[-2000:]}\n{done.stderr}"
    return done.stdout


def test_the_walkthrough_runs_as_written(checkout: Path, service: int) -> None:
    outputs = {block.line: run_block(block, checkout, service) for block in WALKTHROUGH}
    everything = "\n".join(outputs.values())
    # The service block: the statement, the case applied, the search finding its Procedures.
    assert re.search(r'"resourceType":\s*"CapabilityStatement"', everything)
    assert re.search(r'"type":\s*"transaction-response"', everything)
    assert re.search(r'"type":\s*"searchset"', everything)
    # The mapping block: the list, then a Bundle in XML.
    assert "nordjournal-json\tjson" in everything
    assert '<Bundle xmlns="http://hl7.org/fhir">' in everything
    # The validation block: the invalid fixture's error, and the JUnit report written.
    assert "Procedure.reasonCode: error: max allowed = 0, but found 1" in everything
    assert "exit 1: an error" in everything
    assert (checkout / "validation.xml").read_text(encoding="utf-8").startswith("<?xml")
    # The statistics block: case a's MeasureReport, and its unit's rows from the CLI.
    assert re.search(r'"resourceType":\s*"MeasureReport"', everything)
    assert "SE2321000016-VC01  2025-01      3" in everything
    assert "SE2321000016-VC01,2025-01/2025-12,5,2,1,2,1,1,1,1,1,0" in everything
    # The token block: two tokens, each a JWT alone on its line.
    assert len(re.findall(r"^ey[\w-]+\.[\w-]+\.[\w-]+$", everything, re.MULTILINE)) == 2


@pytest.mark.parametrize("block", TRANSCRIPTS, ids=lambda b: f"line {b.line}")
def test_transcripts_show_what_the_command_prints(block: Block, checkout: Path) -> None:
    command, *expected = block.text.rstrip("\n").splitlines()
    done = subprocess.run(
        shlex.split(command.removeprefix("$ ")),
        cwd=checkout,
        env=fresh_env(checkout),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (done.stdout + done.stderr).splitlines() == expected
