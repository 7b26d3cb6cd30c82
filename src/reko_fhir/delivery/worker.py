"""The outbox worker: claims due messages, passes the consent gate, delivers, records.

One pass claims a batch (at most one message per patient and target, the oldest), delivers
them concurrently, and records every attempt in one transaction. A crash between delivering
and recording only means the message is delivered again after its lease expires, which the
targets' conditional updates make harmless. Retry decisions come from the target's
:class:`~reko_fhir.delivery.retry.RetryPolicy`; anything not retryable becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import structlog

from reko_fhir.delivery import metrics
from reko_fhir.delivery.consent_gate import consent_block_reason
from reko_fhir.delivery.errors import ConsentBlockedError, DeliveryError
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.store import outbox
from reko_fhir.store.outbox import Message
from reko_fhir.store.sql import SqlRepository

log = structlog.get_logger("reko_fhir.delivery")


class Target(Protocol):
    """Where messages go. ``deliver`` raises on failure (see :mod:`.errors`)."""

    name: str
    policy: RetryPolicy
    external_recipient: str | None  # Organization/… a consent must cover, for external targets

    async def deliver(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Result:
    message: Message
    result: str  # delivered, retry, dead
    status: int | None = None
    reason: str | None = None
    wait: float = 0.0
    dead_reason: str | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Delivers the outbox of ``repository`` to ``targets`` (by name)."""

    def __init__(
        self,
        repository: SqlRepository,
        targets: Mapping[str, Target],
        *,
        name: str | None = None,
        batch: int = 64,
        lease: timedelta = timedelta(seconds=60),
        idle_wait: float = 0.2,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.repository = repository
        self.targets = dict(targets)
        self.name = name or worker_name()
        self.batch = batch
        self.lease = lease
        self.idle_wait = idle_wait
        self.today = today

    async def run_once(self) -> int:
        """One pass: claim, deliver, record. Returns how many messages were handled."""
        async with self.repository.transaction() as conn:
            claimed = await outbox.claim(
                conn,
                worker=self.name,
                limit=self.batch,
                lease=self.lease,
                targets=sorted(self.targets),
                skip_locked=not self.repository.is_sqlite,
            )
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._deliver(m) for m in claimed))
        now = datetime.now(UTC)
        async with self.repository.transaction() as conn:
            for r in results:
                await outbox.record_attempt(
                    conn,
                    r.message,
                    result=r.result,
                    status=r.status,
                    reason=r.reason,
                    next_attempt_at=now + timedelta(seconds=r.wait),
                    dead_reason=r.dead_reason,
                )
        for r in results:
            metrics.record(r.message.target, r.result, r.dead_reason)
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; sleep briefly when nothing is due."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:  # the worker outlives a failed pass (database restart…)
                log.exception("delivery.pass_failed", worker=self.name)
                handled = 0
            if not handled:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_wait)

    async def drain(self, *, timeout: float = 60.0) -> None:
        """Run passes until nothing is due (tests, ``reko-fhir worker --once``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if not await self.run_once():
                return
        raise TimeoutError("the outbox did not drain in time")

    async def _deliver(self, message: Message) -> _Result:
        target = self.targets[message.target]
        try:
            reason = await consent_block_reason(
                self.repository, message, target.external_recipient, self.today()
            )
            if reason is not None:
                raise ConsentBlockedError(reason)
            await target.deliver(message)
        except Exception as exc:  # every failure is recorded, none escapes
            return self._failed(message, target.policy, exc)
        log.info("delivery.delivered", target=message.target, message=message.id)
        return _Result(message, "delivered")

    def _failed(self, message: Message, policy: RetryPolicy, exc: Exception) -> _Result:
        status = exc.status if isinstance(exc, DeliveryError) else None
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        if isinstance(exc, ConsentBlockedError):
            # Audited: the blocked disclosure is logged with who, what and why (no patient data).
            log.warning(
                "delivery.blocked_by_consent",
                target=message.target,
                message=message.id,
                resource=f"{message.resource_type}/{message.resource_id}",
                reason=str(exc),
            )
            return _Result(message, "dead", reason=reason, dead_reason="consent")
        age = (datetime.now(UTC) - message.created_at).total_seconds()
        wait = policy.decide(message.attempts + 1, age, exc)
        if wait is None:
            kind = "rejected" if isinstance(exc, DeliveryError) and not exc.retryable else "gave-up"
            log.warning("delivery.dead_letter", target=message.target, message=message.id, why=kind)
            return _Result(message, "dead", status, reason, dead_reason=kind)
        log.info("delivery.retry", target=message.target, message=message.id, wait=round(wait, 3))
        return _Result(message, "retry", status, reason, wait=wait)
