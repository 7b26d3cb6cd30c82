"""Running delivery: worker tasks beside the API (``reko-fhir serve``) or alone
(``reko-fhir worker``), plus the retention sweep that purges old finished messages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta

import structlog

from reko_fhir.delivery import admin
from reko_fhir.delivery.worker import Target, Worker, worker_name
from reko_fhir.store.sql import SqlRepository

log = structlog.get_logger("reko_fhir.delivery")


class DeliveryService:
    """``workers`` concurrent workers over ``targets``; ``stop()`` lets passes finish."""

    def __init__(
        self,
        repository: SqlRepository,
        targets: Mapping[str, Target],
        *,
        workers: int = 1,
        batch: int = 64,
        lease: timedelta = timedelta(seconds=60),
        delivered_retention: timedelta = timedelta(days=7),
        dead_retention: timedelta = timedelta(days=30),
        sweep_every: float = 3600.0,
    ) -> None:
        self.repository = repository
        self.targets = dict(targets)
        self.workers = [
            Worker(repository, self.targets, name=f"{worker_name()}/{n}", batch=batch, lease=lease)
            for n in range(workers)
        ]
        self.delivered_retention = delivered_retention
        self.dead_retention = dead_retention
        self.sweep_every = sweep_every
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self.targets:
            return
        self._tasks = [asyncio.create_task(w.run(self._stop)) for w in self.workers]
        self._tasks.append(asyncio.create_task(self._sweep()))
        log.info("delivery.started", workers=len(self.workers), targets=sorted(self.targets))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for target in self.targets.values():
            await target.aclose()

    async def _sweep(self) -> None:
        while not self._stop.is_set():
            try:
                await admin.purge(
                    self.repository, status="delivered", older_than=self.delivered_retention
                )
                await admin.purge(self.repository, status="dead", older_than=self.dead_retention)
            except Exception:  # the sweep retries at its next turn
                log.exception("delivery.sweep_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.sweep_every)
