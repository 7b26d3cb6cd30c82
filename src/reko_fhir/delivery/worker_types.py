"""What the worker and its targets exchange: the target protocols (one message a request, or a
batch of them) and what a target answers. :mod:`reko_fhir.delivery.worker` re-exports them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.store.outbox import Message
from reko_fhir.store.repository import Json


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a target made of a message: its ``Type/id`` for the resource (when it tells) and
    the HTTP status it answered (None for a target that speaks no HTTP or was not asked)."""

    remote: str | None
    status: int | None = None


class Target(Protocol):
    """Where messages go. ``deliver`` raises on failure (see :mod:`.errors`).

    A target may also name the resource types it receives (``subscribed``, empty: all);
    references to other types go to it as logical references (``Reference.identifier``).
    """

    name: str
    policy: RetryPolicy
    external_recipient: str | None  # Organization/… a consent must cover, for external targets

    async def deliver(
        self, message: Message, references: Mapping[str, str], logical: Mapping[str, Json]
    ) -> Delivered | str | None:
        """Send ``message``; ``references`` maps local ``Type/id`` to the target's, where
        known; ``logical`` gives business identifiers for references to send as logical ones.
        Returns what the target answered, or just its ``Type/id`` for the resource."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready for a batch target: past the consent gate, with the target's names of
    what it refers to and the logical references (as :meth:`Target.deliver` receives them)."""

    message: Message
    references: Mapping[str, str]
    logical: Mapping[str, Json]


@runtime_checkable
class BatchTarget(Protocol):
    """A target that takes up to ``batch_size`` messages in one request (the national log, a
    FHIR server taking ``batch`` Bundles).

    ``deliver_batch`` answers per message: delivered (what the target answered, or None) or
    the exception it failed with. ``discloses``: the messages are resources disclosed to the
    target, so each passes the consent gate, gets its references resolved as for
    :meth:`Target.deliver`, and its final outcome goes to the access log (False for the
    access log's own shipping). The worker keeps up to the target's ``concurrency`` batches
    in flight (one without it), at most one message per patient among them all (the claim's
    rule), and records a batch's outcomes in one transaction, after the target's answer.
    """

    name: str
    policy: RetryPolicy
    batch_size: int
    discloses: bool

    async def deliver_batch(
        self, batch: Sequence[Outgoing]
    ) -> Sequence[Delivered | Exception | None]: ...
