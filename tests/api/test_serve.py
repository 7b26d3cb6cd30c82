"""``reko-fhir serve`` as a real process on loopback, driven over HTTP.

Also by a third-party FHIR client from PyPI (fhirpy), as an EHR integration would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhirpy import AsyncFHIRClient

from tests.golden import FIXTURES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The base URL of a fresh ``reko-fhir serve`` on its embedded SQLite default."""
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
        ) as process,
    ):
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base}/metadata", timeout=2)
                    break
                except httpx.TransportError:
                    assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
                    assert time.monotonic() < deadline, "the server did not start within 30 s"
                    time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_serve_answers_metadata_and_keeps_data_in_the_data_folder(
    server: str, tmp_path: Path
) -> None:
    answer = httpx.get(f"{server}/metadata", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "CapabilityStatement"
    assert (tmp_path / "data" / "reko.sqlite3").is_file()


async def test_a_third_party_client_creates_searches_reads_and_updates(server: str) -> None:
    client = AsyncFHIRClient(server, extra_headers={"Content-Type": "application/fhir+json"})
    patient = json.loads(
        (FIXTURES / "valid" / "patient-personnummer-system.json").read_text(encoding="utf-8")
    )
    created = client.resource("Patient", **patient)
    await created.save()
    assert created.id
    found = await client.resources("Patient").search(identifier="199103744521").fetch()
    assert [p.id for p in found] == [created.id]
    read = await client.reference("Patient", created.id).to_resource()
    assert read["identifier"][0]["value"] == "199103744521"
    read["active"] = True
    await read.save()
    again = await client.reference("Patient", created.id).to_resource()
    assert again["active"] is True
    assert again["meta"]["versionId"] == "2"
