"""``reko-fhir serve`` as a real process on loopback, driven over HTTP.

Also by a third-party FHIR client from PyPI (fhirpy), as an EHR integration would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhirpy import AsyncFHIRClient

from tests.golden import FIXTURES
from tests.service import start_service


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The base URL of a fresh ``reko-fhir serve`` on its embedded SQLite default."""
    running = start_service(tmp_path / "data")
    try:
        yield running.base
    finally:
        running.process.terminate()
        running.process.wait(timeout=15)


def test_serve_answers_metadata_and_keeps_data_in_the_data_folder(
    server: str, tmp_path: Path
) -> None:
    answer = httpx.get(f"{server}/metadata", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "CapabilityStatement"
    assert (tmp_path / "data" / "reko.sqlite3").is_file()
    key = tmp_path / "data" / "signing-key.pem"
    assert key.is_file()
    assert key.stat().st_mode & 0o077 == 0  # the signing key is the owner's alone


def test_without_a_token_the_service_discloses_nothing(server: str) -> None:
    answer = httpx.get(f"{server}/Patient", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["issue"][0]["code"] == "login"


def test_serve_refuses_to_listen_off_loopback_with_only_the_local_key(tmp_path: Path) -> None:
    env = {**os.environ, "REKO_DATA_DIR": str(tmp_path / "data")}
    env.pop("REKO_JWKS_FILE", None)
    env.pop("REKO_JWKS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "reko_fhir", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "REKO_JWKS_FILE" in done.stderr


def cli_token(data_dir: Path, *options: str) -> str:
    """A token from ``reko-fhir token`` (the real command, on the server's data folder)."""
    done = subprocess.run(
        [sys.executable, "-m", "reko_fhir", "token", *options],
        env={**os.environ, "REKO_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().splitlines()[-1]


async def test_a_third_party_client_creates_searches_reads_and_updates(
    server: str, tmp_path: Path
) -> None:
    token = cli_token(tmp_path / "data", "--scope", "system/*.cruds", "--unit", "SE2321000016-15CQ")
    client = AsyncFHIRClient(
        server,
        authorization=f"Bearer {token}",
        extra_headers={"Content-Type": "application/fhir+json"},
    )
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
