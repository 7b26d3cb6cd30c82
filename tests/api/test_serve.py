"""``reko-fhir serve`` as a real process on loopback, on its embedded SQLite default."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_metadata_and_keeps_data_in_the_data_folder(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "REKO_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "server.log"
    with (
        log.open("wb") as errors,
        subprocess.Popen(
            [sys.executable, "-m", "reko_fhir", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        ) as server,
    ):
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=2)
                    break
                except httpx.TransportError:
                    assert server.poll() is None, log.read_text(encoding="utf-8", errors="replace")
                    assert time.monotonic() < deadline, "the server did not start within 30 s"
                    time.sleep(0.2)
            assert answer.status_code == 200
            assert answer.json()["resourceType"] == "CapabilityStatement"
            assert (tmp_path / "data" / "reko.sqlite3").is_file()
        finally:
            server.terminate()
            server.wait(timeout=15)
