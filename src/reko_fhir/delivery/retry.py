"""Retry policies: tenacity objects, one per target, deciding across worker restarts.

A delivery's attempts are stored in the outbox, not held in a running coroutine, so a retry
survives a crash. The policy is still tenacity's: its ``retry``, ``stop`` and ``wait``
strategies are asked about attempt *n* of a message that is *age* seconds old, exactly as
they would be inside an ``AsyncRetrying`` loop. Exponential backoff with jitter; a target's
``Retry-After`` is honoured (up to the policy's longest wait); attempts and age are capped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    Future,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from reko_fhir.delivery.errors import DeliveryError, is_retryable


class wait_retry_after(wait_base):  # noqa: N801 - named like tenacity's own strategies
    """The target's ``Retry-After`` when it sent one (capped), otherwise ``fallback``."""

    def __init__(self, fallback: wait_base, longest: float) -> None:
        self.fallback = fallback
        self.longest = longest

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, DeliveryError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.longest)
        return float(self.fallback(retry_state))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one target retries. ``decide`` gives the wait before the next attempt, or None."""

    max_attempts: int = 12
    max_age: float = 24 * 3600.0
    initial_wait: float = 0.5
    longest_wait: float = 300.0
    jitter: float = 0.5

    def retrying(self) -> AsyncRetrying:
        """The tenacity object: also usable directly around a coroutine."""
        backoff = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.longest_wait, jitter=self.jitter
        )
        return AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_age),
            wait=wait_retry_after(backoff, self.longest_wait),
            reraise=True,
        )

    def decide(self, attempts: int, age: float, exc: BaseException) -> float | None:
        """After ``attempts`` failed tries of a message ``age`` seconds old: wait, or give up."""
        retrying = self.retrying()
        state = RetryCallState(retrying, None, (), {})
        now = time.monotonic()
        state.start_time = now - age
        state.attempt_number = attempts
        state.outcome = Future.construct(attempts, exc, True)
        state.outcome_timestamp = now
        if not retrying.retry(state) or retrying.stop(state):
            return None
        return float(retrying.wait(state))
