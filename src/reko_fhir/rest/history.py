"""``_since`` of the history interactions (https://hl7.org/fhir/R4/http.html#history).

A ``_since`` that is no instant is refused (400) rather than ignored, and one in the future is
honoured (nothing changed since then): a client polling with a bad value must not be sent the
whole history as if it had asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.rest.inputs import shown
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.store import Stored, instants

HISTORY_PARAMS = frozenset({"_since", "_format", "_pretty"})


def since_filter(request: FhirRequest) -> Callable[[Stored], bool]:
    """Whether a version is in the history asked for (changed at or after ``_since``)."""
    unknown = sorted({k for k, _ in request.query} - HISTORY_PARAMS)
    if unknown:
        message = f"history takes _since, not {shown(', '.join(unknown))}"
        raise OperationOutcomeError(
            [error(IssueCode.NOT_SUPPORTED, message, shown(unknown[0]))], status=400
        )
    values = [v for k, v in request.query if k == "_since"]
    if not values:
        return lambda _: True
    if len(values) > 1:
        raise _bad("_since is given once")
    since = _instant(values[0])
    return lambda stored: stored.last_updated >= since


def _instant(text: str) -> datetime:
    # An instant (https://hl7.org/fhir/R4/datatypes.html#instant); a date or a dateTime
    # without seconds means its first moment. An unencoded '+' arrives as a space.
    if not text[:4].isdigit():
        raise _bad(f"_since '{shown(text)}' is not an instant (e.g. 2025-01-31T12:00:00Z)")
    try:
        low, _ = instants(text.strip())
    except (ValueError, OverflowError):
        raise _bad(
            f"_since '{shown(text)}' is not an instant (e.g. 2025-01-31T12:00:00Z)"
        ) from None
    return low


def _bad(message: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.VALUE, message, "_since")], status=400)
