"""Start and stop the test peers as real processes on a free loopback port.

``medplum()`` runs ``medplum_server.mjs`` (needs ``npm ci --prefix tests/peers``);
``fault_target(...)`` runs ``fault_target.py``. Each waits until the peer answers HTTP and
stops it afterwards; its output goes to a log file whose tail is shown if it dies early.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PEERS = Path(__file__).resolve().parent
MEDPLUM_SERVER = PEERS / "medplum_server.mjs"
FAULT_TARGET = PEERS / "fault_target.py"


class PeerMissingError(RuntimeError):
    """A peer cannot start here (Node or node_modules missing): said plainly, never skipped."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    """A running peer: its base URL and process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _start(command: Sequence[str], port: int, probe: str, seconds: float) -> Peer:
    log = Path(tempfile.mkstemp(prefix="peer-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    peer = Peer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(peer.base_url + probe, timeout=1)
            return peer
        except httpx.HTTPError:
            time.sleep(0.05)
    peer.stop()
    tail = peer.log_tail()
    log.unlink(missing_ok=True)
    raise RuntimeError(
        f"{command[1]} did not answer within {seconds} s (exit {process.returncode}):\n{tail}"
    )


def require_medplum() -> str:
    """The node executable, once the Medplum router is installed; else a clear error."""
    node = shutil.which("node")
    if node is None:
        raise PeerMissingError("Node.js is not on PATH: the Medplum peer needs Node 20")
    if not (PEERS / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise PeerMissingError(
            "tests/peers/node_modules lacks @medplum/fhir-router: run npm ci --prefix tests/peers"
        )
    return node


@contextmanager
def medplum(seconds: float = 60) -> Iterator[Peer]:
    """A fresh Medplum FHIR server (in-memory) for the duration of the block."""
    node = require_medplum()
    port = free_port()
    peer = _start([node, str(MEDPLUM_SERVER), str(port)], port, "/Patient?_count=1", seconds)
    try:
        yield peer
    finally:
        peer.stop()
        peer.log.unlink(missing_ok=True)


@contextmanager
def fault_target(
    failure_rate: float = 0.0,
    seed: int = 0,
    *,
    hang_seconds: float = 5.0,
    slow_seconds: float = 0.2,
    seconds: float = 30,
) -> Iterator[Peer]:
    """The fault-injecting target (``fault_target.py``) for the duration of the block."""
    port = free_port()
    command = [
        sys.executable,
        str(FAULT_TARGET),
        "--port",
        str(port),
        "--failure-rate",
        str(failure_rate),
        "--seed",
        str(seed),
        "--hang-seconds",
        str(hang_seconds),
        "--slow-seconds",
        str(slow_seconds),
    ]
    peer = _start(command, port, "/_stats", seconds)
    try:
        yield peer
    finally:
        peer.stop()
        peer.log.unlink(missing_ok=True)
