"""The outbox worker: claims due messages, passes the consent gate, delivers, records.

A turn records what finished and claims more (at most one message per patient and target, the
oldest) in one transaction; the claimed are delivered concurrently, at most a target's
``concurrency`` at a time (its ``slots``), while the next turn commits. A crash between delivering
and recording only means the message is delivered again after its lease expires, which the
targets' conditional updates make harmless. Retry decisions come from the target's
:class:`~reko_fhir.delivery.retry.RetryPolicy`; anything not retryable becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.delivery import metrics
from reko_fhir.delivery.errors import ConsentBlockedError, DeliveryError
from reko_fhir.delivery.prepare import prepare
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.worker_types import BatchTarget, Delivered, Outgoing, Target
from reko_fhir.security.audit import DELIVERY, AccessRecord, audit_entry
from reko_fhir.store import audit as audit_store
from reko_fhir.store import outbox_delivery
from reko_fhir.store.outbox import Message
from reko_fhir.store.outbox_delivery import AttemptOutcome
from reko_fhir.store.sql import SqlRepository

__all__ = ["BatchTarget", "Delivered", "Outgoing", "Target", "Worker", "worker_name"]

log = structlog.get_logger("reko_fhir.delivery")
DEPTH = 4  # messages claimed per slot of a target: see Worker._limit


@dataclass(frozen=True, slots=True)
class _Result:
    message: Message
    result: str  # delivered, retry, dead
    status: int | None = None
    reason: str | None = None
    wait: float = 0.0
    dead_reason: str | None = None
    remote: str | None = None  # the resource's Type/id at the target
    audited: bool = True  # False for the access log's own shipping (it would log itself)


def _access_record(result: _Result, now: datetime) -> AccessRecord:
    message = result.message
    if result.result == "delivered":
        status = 200
    elif result.dead_reason == "consent":
        status = 403
    else:
        status = result.status if result.status and result.status >= 400 else 503
    patient = message.ordering_key
    return AccessRecord(
        action="R",  # DICOM Export: data leaves for another system
        interaction=DELIVERY,
        outcome=status,
        agent="reko-fhir-worker",
        unit=None,
        client_id=f"target:{message.target}"[:128],
        source_address=None,
        patients=(patient,) if patient.startswith("Patient/") else (),
        entities=(f"{message.resource_type}/{message.resource_id}",),
        query=None,
        recorded=now,
    )


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
        linger: float = 0.05,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.repository = repository
        self.targets = dict(targets)
        self.name = name or worker_name()
        self.batch = batch
        self.lease = lease
        self.idle_wait = idle_wait
        self.linger = linger  # how long a finished delivery may wait for others to record with
        self.today = today
        # Asked at every wake-up; a runtime-checkable Protocol's isinstance is slow.
        self._limits = {name: self._limit(name) for name in self.targets}

    def _limit(self, name: str) -> tuple[int, int]:
        """How many messages of target ``name`` one worker keeps claimed, never more than
        ``batch``, and how many must be free before a turn refills them.

        A target with ``slots`` gets four times its ``concurrency``, refilled when half of
        them are free: the next requests are ready whenever a slot frees, the turn that
        records and refills commits while the rest are still being sent, and each turn (a
        transaction of three statements) is paid by two slots' worth of deliveries. Any other
        target its ``concurrency`` (else ``batch``), refilled when half are free. A batch
        target counts in batches: its ``concurrency`` of them (one without it), refilled when
        half are free."""
        target = self.targets[name]
        if isinstance(target, BatchTarget):
            batches = max(1, min(256, int(getattr(target, "concurrency", 1))))
            return batches, max(1, batches // 2)
        concurrency = int(getattr(target, "concurrency", self.batch))
        if getattr(target, "slots", None) is None:
            depth = max(1, min(self.batch, concurrency))
            return depth, (depth + 1) // 2
        depth = max(1, min(self.batch, DEPTH * concurrency))
        return depth, max(1, depth // 2)

    async def _claim_in(self, conn: AsyncConnection, name: str, limit: int) -> list[Message]:
        target = self.targets[name]
        size = target.batch_size * limit if isinstance(target, BatchTarget) else limit
        return await outbox_delivery.claim(
            conn,
            worker=self.name,
            limit=size,
            lease=self.lease,
            targets=[name],
            skip_locked=not self.repository.is_sqlite,
        )

    async def _record_in(self, conn: AsyncConnection, results: list[_Result]) -> None:
        now = datetime.now(UTC)
        outcomes = [
            AttemptOutcome(
                r.message,
                r.result,
                r.status,
                r.reason,
                now + timedelta(seconds=r.wait),
                r.dead_reason,
            )
            for r in results
        ]
        learned: dict[str, dict[str, str]] = {}
        for r in results:
            if r.remote:
                local = f"{r.message.resource_type}/{r.message.resource_id}"
                learned.setdefault(r.message.target, {})[local] = r.remote
        # Each final outcome — sent, refused, blocked by consent — is a disclosure (or an
        # attempted one) of patient data: it goes to the access log with the attempt.
        logged = [
            audit_entry(_access_record(r, now))
            for r in results
            if r.result != "retry" and r.audited
        ]
        await outbox_delivery.record(conn, outcomes, learned)
        await audit_store.append(conn, logged, subscriptions=self.repository.subscriptions)

    async def _turn(
        self, results: list[_Result], wanted: Mapping[str, int]
    ) -> list[tuple[str, list[Message]]]:
        """Record ``results`` and claim up to ``wanted[target]`` slots' worth of messages for
        each target, in one transaction: one commit per turn, not one per step.

        Recording first lets a patient's next message be claimed in the same turn. A failed
        turn records nothing: those leases expire and the messages are sent again, which the
        targets' idempotent writes make harmless."""
        claimed: list[tuple[str, list[Message]]] = []
        async with self.repository.transaction() as conn:
            if results:
                await self._record_in(conn, results)
            for name, slots in wanted.items():
                messages = await self._claim_in(conn, name, slots)
                if messages:
                    claimed.append((name, messages))
        for r in results:
            metrics.record(r.message.target, r.result, r.dead_reason)
        if results:
            log.info(
                "delivery.recorded",
                worker=self.name,
                delivered=sum(r.result == "delivered" for r in results),
                retry=sum(r.result == "retry" for r in results),
                dead=sum(r.result == "dead" for r in results),
            )
        return claimed

    def _tasks_for(self, name: str, messages: list[Message]) -> list[asyncio.Task[list[_Result]]]:
        target = self.targets[name]
        # Past half its lease a message waiting for a slot is not sent: in flight its lease
        # could run out and another worker send it (or its successor) at the same time.
        send_by = asyncio.get_running_loop().time() + self.lease.total_seconds() / 2
        if isinstance(target, BatchTarget):
            size = target.batch_size
            return [
                asyncio.create_task(self._deliver_batch(target, messages[at : at + size], send_by))
                for at in range(0, len(messages), size)
            ]
        return [asyncio.create_task(self._deliver_one(m, send_by)) for m in messages]

    async def run_once(self) -> int:
        """One pass: claim, deliver, record. Returns how many messages were handled."""
        claimed = await self._turn([], {name: limit for name, (limit, _) in self._limits.items()})
        tasks = [t for name, messages in claimed for t in self._tasks_for(name, messages)]
        results = [r for done in await asyncio.gather(*tasks) for r in done]
        if results:
            await self._turn(results, {})
        return len(results)

    def _wanted(self, busy: Counter[str], *, idle: bool) -> dict[str, int]:
        """Free places per target (see :meth:`_limit`), where refilling them is worth a turn:
        enough are free, or the worker is idle."""
        wanted = {}
        for name, (limit, refill) in self._limits.items():
            free = limit - busy[name]
            if free > 0 and (idle or free >= refill):
                wanted[name] = free
        return wanted

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, keeping each target's slots busy.

        A slow or hanging target holds only its own slots: what finished is recorded within
        ``linger``, and a target's claimed messages are refilled once a slot's worth of them
        finished, each turn recording and claiming in one transaction. A batch target has up to
        its ``concurrency`` requests in flight. On ``stop`` the deliveries in flight finish and are
        recorded.
        """
        loop = asyncio.get_running_loop()
        in_flight: dict[asyncio.Task[list[_Result]], str] = {}  # task -> its target
        finished: list[asyncio.Task[list[_Result]]] = []
        first_done = [0.0]  # when the oldest of ``finished`` finished
        wake = asyncio.Event()

        def on_done(task: asyncio.Task[list[_Result]]) -> None:
            in_flight.pop(task, None)
            if not finished:
                first_done[0] = loop.time()
            finished.append(task)
            wake.set()

        while not stop.is_set() or in_flight or finished:
            results = [r for task in finished for r in task.result()]
            finished.clear()
            busy = Counter(in_flight.values())
            wanted = {} if stop.is_set() else self._wanted(busy, idle=not in_flight)
            if results or wanted:
                try:
                    claimed = await self._turn(results, wanted)
                except Exception:  # unrecorded: the leases expire and they are sent again
                    log.exception("delivery.turn_failed", worker=self.name)
                    claimed = []
                for name, messages in claimed:
                    for task in self._tasks_for(name, messages):
                        in_flight[task] = name
                        task.add_done_callback(on_done)
            if not in_flight and not finished:
                if not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.idle_wait)
                continue
            await self._await_turn(in_flight, finished, first_done, wake, stop)

    async def _await_turn(
        self,
        in_flight: dict[asyncio.Task[list[_Result]], str],
        finished: list[asyncio.Task[list[_Result]]],
        first_done: list[float],
        wake: asyncio.Event,
        stop: asyncio.Event,
    ) -> None:
        """Wait until a turn is worth its transaction: something finished and a target can be
        refilled, or nothing is in flight, or the first finished has waited ``linger``.
        With enough free slots but nothing finished, look again for newly due messages soon."""
        loop = asyncio.get_running_loop()
        while True:
            busy = Counter(in_flight.values())
            refill = self._wanted(busy, idle=False)
            if finished and (
                stop.is_set()
                or not in_flight
                or refill
                or loop.time() >= first_done[0] + self.linger
            ):
                return
            if finished:
                timeout: float | None = first_done[0] + self.linger - loop.time()
            elif refill and not stop.is_set():
                timeout = self.idle_wait / 4
            else:
                timeout = None
            wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await wake.wait()
            except TimeoutError:
                if not finished:
                    return  # a look for newly due messages

    async def _deliver_one(self, message: Message, send_by: float) -> list[_Result]:
        """Deliver in one of the target's slots (when it has them), or give the message up
        unrecorded when none freed in time: its lease expires and it is claimed again."""
        slots: asyncio.Semaphore | None = getattr(self.targets[message.target], "slots", None)
        if slots is None:
            return [await self._deliver(message)]
        async with slots:
            if asyncio.get_running_loop().time() > send_by:
                log.warning("delivery.lease_short", target=message.target, message=message.id)
                return []
            return [await self._deliver(message)]

    async def _deliver_batch(
        self, target: BatchTarget, messages: list[Message], send_by: float
    ) -> list[_Result]:
        """One request for ``messages`` (in one of the target's slots, when it has them); each
        is judged on its own outcome and attempts."""
        slots: asyncio.Semaphore | None = getattr(target, "slots", None)
        async with slots or contextlib.nullcontext():
            if slots is not None and asyncio.get_running_loop().time() > send_by:
                log.warning("delivery.lease_short", target=target.name, messages=len(messages))
                return []
            return await self._send_batch(target, messages)

    async def _send_batch(self, target: BatchTarget, messages: list[Message]) -> list[_Result]:
        if target.discloses:
            prepared = await prepare(self.repository, target, messages, self.today())
        else:
            prepared = [Outgoing(m, {}, {}) for m in messages]
        ready = [p for p in prepared if isinstance(p, Outgoing)]
        outcomes: Sequence[Delivered | Exception | None] = []
        if ready:
            try:
                outcomes = await target.deliver_batch(ready)
            except Exception as exc:  # every failure is recorded, none escapes
                outcomes = [exc] * len(ready)
        answered = {item.message.id: outcome for item, outcome in zip(ready, outcomes, strict=True)}
        results = []
        for message, item in zip(messages, prepared, strict=True):
            outcome = item if isinstance(item, Exception) else answered[message.id]
            if isinstance(outcome, Exception):
                failed = self._failed(message, target.policy, outcome)
                results.append(dataclasses.replace(failed, audited=target.discloses))
            else:
                done = outcome or Delivered(None, 200)
                results.append(
                    _Result(
                        message,
                        "delivered",
                        status=done.status,
                        remote=done.remote,
                        audited=target.discloses,
                    )
                )
        log.info(
            "delivery.batch",
            target=target.name,
            messages=len(messages),
            delivered=sum(r.result == "delivered" for r in results),
        )
        return results

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
            ready = (await prepare(self.repository, target, [message], self.today()))[0]
            if isinstance(ready, Exception):
                raise ready
            answer = await target.deliver(message, ready.references, ready.logical)
        except Exception as exc:  # every failure is recorded, none escapes
            return self._failed(message, target.policy, exc)
        done = answer if isinstance(answer, Delivered) else Delivered(answer)
        # Debug only: a line per message cost as much as its bookkeeping; each turn logs counts.
        log.debug(
            "delivery.delivered", target=message.target, message=message.id, status=done.status
        )
        return _Result(message, "delivered", status=done.status, remote=done.remote)

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
            log.warning(
                "delivery.dead_letter",
                target=message.target,
                message=message.id,
                why=kind,
                reason=reason[:300],
            )
            return _Result(message, "dead", status, reason, dead_reason=kind)
        log.info("delivery.retry", target=message.target, message=message.id, wait=round(wait, 3))
        return _Result(message, "retry", status, reason, wait=wait)
