"""Prometheus metrics of delivery: queue depth and oldest age per target, outcomes, retries.

Counters count in this process; the queue gauges are read from the outbox itself when
``/metrics`` is scraped, so they are right whichever process delivered.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from reko_fhir.store import outbox_admin
from reko_fhir.store.sql import SqlRepository

REGISTRY = CollectorRegistry()
DELIVERIES = Counter(
    "reko_deliveries",
    "Delivery attempts by target and result",
    ["target", "result"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "reko_dead_letters",
    "Messages that became dead letters",
    ["target", "reason"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "reko_outbox_depth",
    "Outbox messages by target and status",
    ["target", "status"],
    registry=REGISTRY,
)
OLDEST_AGE = Gauge(
    "reko_outbox_oldest_pending_seconds",
    "Age of the oldest pending message",
    ["target"],
    registry=REGISTRY,
)


def record(target: str, result: str, dead_reason: str | None) -> None:
    DELIVERIES.labels(target, result).inc()
    if result == "dead":
        DEAD_LETTERS.labels(target, dead_reason or "unknown").inc()


async def refresh_queue(repository: SqlRepository) -> None:
    """Set the queue gauges from the outbox (called when /metrics is scraped)."""
    async with repository.transaction(writer=False) as conn:
        depth = await outbox_admin.depth(conn)
    now = datetime.now(UTC)
    QUEUE_DEPTH.clear()
    OLDEST_AGE.clear()
    for (target, status), (count, oldest) in depth.items():
        QUEUE_DEPTH.labels(target, status).set(count)
        if status == "pending" and oldest is not None:
            OLDEST_AGE.labels(target).set((now - oldest).total_seconds())
