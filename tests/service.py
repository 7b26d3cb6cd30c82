"""``reko-fhir serve`` as a real process on loopback, with tokens of its local key.

The server runs on its embedded default (SQLite in a fresh data folder); tokens are signed with
the local key it created there, as ``reko-fhir token`` would sign them. ``row_counts`` reads
the store's file directly, so a test can prove that a refused request changed nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reko_fhir.security.tokens import LocalSigningKey
from reko_fhir.store import SqlRepository

UNIT_A = "SE2321000016-15CQ"
STAFF_A = "SE2321000016-1003"
ALL = "system/*.cruds"
# Tables that grow by design with every request (the access log): left out of "unchanged".
GROWING = frozenset({"audit_event", "audit_patient"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    base: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def key(self) -> LocalSigningKey:
        return LocalSigningKey.load_or_create(self.data_dir)

    def token(
        self,
        scope: str = ALL,
        *,
        unit: str | None = UNIT_A,
        subject: str = STAFF_A,
        external_actor: str | None = None,
        all_units: bool = False,
        **options: Any,
    ) -> str:
        return self.key().mint(
            scope,
            subject=subject,
            care_unit=None if (external_actor or all_units) else unit,
            external_actor=external_actor,
            all_units=all_units,
            **options,
        )

    def headers(self, token: str | None = None, **kw: Any) -> dict[str, str]:
        return {
            "authorization": f"Bearer {token or self.token(**kw)}",
            "content-type": "application/fhir+json",
        }

    def row_counts(self) -> dict[str, int]:
        """Rows per table, the access log left out (it grows with every request by design)."""

        async def count() -> dict[str, int]:
            store = await SqlRepository.open(
                f"sqlite+aiosqlite:///{self.data_dir / 'reko.sqlite3'}"
            )
            try:
                return {k: v for k, v in (await store.row_counts()).items() if k not in GROWING}
            finally:
                await store.close()

        return asyncio.run(count())

    def healthy(self) -> bool:
        return self.process.poll() is None and httpx.get(f"{self.base}/healthz").status_code == 200


def start_service(data_dir: Path, env: dict[str, str] | None = None) -> Service:
    port = free_port()
    log = data_dir.parent / f"server-{port}.log"
    with log.open("wb") as errors:  # the child keeps its own handle
        process = subprocess.Popen(
            [sys.executable, "-m", "reko_fhir", "serve", "--port", str(port)],
            env={**os.environ, "REKO_DATA_DIR": str(data_dir), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/metadata", timeout=2)
            break
        except httpx.TransportError:
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.2)
    return Service(base, data_dir, log, process)
