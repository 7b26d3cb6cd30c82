"""The app with delivery targets, for the tests that follow a write to the target: served
in-process (ASGI), written to with a platform token naming one care unit, and the outbox's
state read back from the app's own store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from reko_fhir.api import create_app
from reko_fhir.config import Settings
from reko_fhir.security.tokens import LocalSigningKey
from reko_fhir.store import SqlRepository, outbox_admin
from reko_fhir.store.outbox import Message
from tests.golden import FIXTURES

Json = dict[str, Any]
UNIT = "SE2321000016-VC01"  # the care unit of the a-primary-care case
FHIR_JSON = {"content-type": "application/fhir+json"}
# Quick, and patient enough for a resource that waits for the organisation it names.
FAST_RETRY = {"max_attempts": 40, "initial_wait": 0.02, "longest_wait": 0.2, "jitter": 0.0}


def case(name: str = "a-primary-care") -> Json:
    bundle: Json = json.loads(
        (FIXTURES / "mapping" / name / "expected.json").read_text(encoding="utf-8")
    )
    return bundle


@dataclass
class Served:
    app: FastAPI
    http: httpx.AsyncClient
    data_dir: Path

    @property
    def repository(self) -> SqlRepository:
        store: SqlRepository = self.app.state.repository
        return store

    def headers(self, *, unit: str | None = None, scope: str = "system/*.cruds") -> dict[str, str]:
        """A unit's own token (``unit``), else the platform's with the unit named per request."""
        key = LocalSigningKey.load_or_create(self.data_dir)
        if unit is not None:
            token = key.mint(scope, subject="SE2321000016-1003", care_unit=unit)
            return {"authorization": f"Bearer {token}"}
        token = key.mint(scope, subject="SE2321000016-PLAT", all_units=True)
        return {"authorization": f"Bearer {token}", "x-reko-care-unit": UNIT}

    async def messages(self, **filters: Any) -> list[Message]:
        async with self.repository.transaction(writer=False) as conn:
            return await outbox_admin.messages(conn, limit=100_000, **filters)

    async def settled(self, seconds: float = 30) -> list[Message]:
        """Wait until nothing is pending; every message then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            queued = await self.messages()
            if not any(m.status == "pending" for m in queued):
                return queued
            await asyncio.sleep(0.1)
        stuck = [(m.resource_type, m.last_error) for m in await self.messages(status="pending")]
        raise TimeoutError(f"the outbox did not settle: {stuck}")


@asynccontextmanager
async def serving(
    data_dir: Path, targets: list[Json], *, database_url: str | None = None
) -> AsyncIterator[Served]:
    """The app with ``targets`` (their retries fast) and one worker."""
    configured = json.dumps([{"retry": FAST_RETRY, **t} for t in targets])
    settings = Settings(data_dir=data_dir, targets=configured, workers=1, database_url=database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reko.test") as http:
            served = Served(app, http, data_dir)
            http.headers.update(served.headers())
            yield served
