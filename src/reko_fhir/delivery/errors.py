"""What a target raises when a delivery fails, and the one function that decides on retrying.

Transport failures (``httpx.TransportError``: refused, reset, timeouts) are retried; so are
408, 429 and 5xx answers. Any other refusal — a 4xx, a SOAP fault, a RIVTA ``resultCode`` ERROR
or VALIDATION_ERROR, a consent that no longer covers the disclosure — is final: the message
becomes a dead letter with the reason.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class DeliveryError(Exception):
    """A target refused or failed a delivery.

    ``status`` is the HTTP status when there was one; ``retryable`` overrides the status rule
    (a SOAP fault arrives with 500 but is final); ``retry_after`` is the target's own wish in
    seconds (``Retry-After``); ``outcome`` the OperationOutcome (or fault text) it answered.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        outcome: dict[str, Any] | None = None,
        kind: str = "target",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.outcome = outcome
        self.kind = kind  # "target", "consent", "conflict", "config"
        if retryable is None:
            retryable = status in RETRYABLE_STATUSES
        self.retryable = retryable


class ConsentBlockedError(DeliveryError):
    """The consent gate held a disclosure back at send time: final, audited, reason ``consent``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False, kind="consent")


def is_retryable(exc: BaseException) -> bool:
    """The one place that decides whether a failed delivery is tried again."""
    if isinstance(exc, DeliveryError):
        return exc.retryable
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in RETRYABLE_STATUSES
    # TLS 1.3 may report a refusal after the handshake as the bare ssl error.
    if isinstance(exc, httpx.TransportError | ssl.SSLError) and _certificate_refused(exc):
        return False  # a certificate either side refuses stays refused: configuration, not luck
    # Refused, reset, timed out, half a body: the message may not have arrived; try again.
    return isinstance(exc, httpx.TransportError | ssl.SSLError)


def _certificate_refused(exc: BaseException) -> bool:
    """The TLS handshake failed over a certificate: ours not trusted or missing, theirs not
    trusted (``CERTIFICATE_VERIFY_FAILED``, ``…_ALERT_BAD_CERTIFICATE``, ``…CERTIFICATE_REQUIRED``,
    ``…_ALERT_UNKNOWN_CA``)."""
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore, which wraps the ssl error
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if isinstance(seen, ssl.SSLError) and any(
            word in str(seen).upper() for word in ("CERTIFICATE", "UNKNOWN_CA")
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from datetime import UTC, datetime  # noqa: PLC0415
    from email.utils import parsedate_to_datetime  # noqa: PLC0415

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response, what: str) -> DeliveryError:
    """A DeliveryError for a non-2xx answer, keeping its OperationOutcome when it sent one."""
    outcome: dict[str, Any] | None = None
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            outcome = body
    except ValueError:
        pass
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return error_from_status(response.status_code, outcome, what, retry_after)


def error_from_status(
    status: int, outcome: dict[str, Any] | None, what: str, retry_after: float | None = None
) -> DeliveryError:
    """A DeliveryError for a refusal with ``status`` (a response's, or a batch entry's
    ``response.status``) and the OperationOutcome that came with it; retryable as the status
    says (:data:`RETRYABLE_STATUSES`)."""
    reason = f"{what}: HTTP {status}"
    if outcome:
        # Servers put the text in diagnostics or in details.text (Medplum does the latter).
        texts = [
            str(i.get("diagnostics") or (i.get("details") or {}).get("text") or "")
            for i in outcome.get("issue", [])
            if isinstance(i, dict)
        ]
        said = "; ".join(t for t in texts if t)[:500]
        if said:
            reason += f" — {said}"
    return DeliveryError(reason, status=status, retry_after=retry_after, outcome=outcome)
