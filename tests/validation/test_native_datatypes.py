"""The native checks of data type invariants (per-1, ref-1, qty-3, cpt-2) give fhirpathpy's
verdicts, and dates are ordered as FHIRPath orders them (validation/datetimes.py).

The checks are also compared with fhirpathpy on every fixture node, on generated and mutated
instances and on the edge cases of agreement.py, in test_native_invariants.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from reko_fhir.validation.datetimes import compare
from reko_fhir.validation.native import native_invariants
from tests.validation.agreement import EXTENSION, PER_1, assert_agree, date_times, fhirpath

EVIDENCE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXPRESSIONS = dict(native_invariants())


@pytest.mark.parametrize(
    ("key", "node", "verdict"),
    [
        ("per-1", {"start": "2025-03-12", "end": "2025-03-10"}, False),
        ("per-1", {"start": "2025-03", "end": "2025-03-10"}, True),
        # The precisions differ: empty, which holds (as strings the start is later).
        ("per-1", {"start": "2025-03-10", "end": "2025-03"}, True),
        (
            "per-1",
            {"start": "2025-03-10T10:00:00+02:00", "end": "2025-03-10T09:30:00+01:00"},
            True,
        ),
        (
            "per-1",
            {"start": "2025-03-10T09:30:00+01:00", "end": "2025-03-10T10:00:00+02:00"},
            False,
        ),
        # The end is 2025-03-09 in UTC: a date and a time compare on the time's UTC date.
        ("per-1", {"start": "2025-03-10", "end": "2025-03-10T00:30:00+01:00"}, False),
        ("per-1", {"start": "2025-03-10T10:00:00.5Z", "end": "2025-03-10T10:00:00Z"}, False),
        ("per-1", {"start": "2025-02-30", "end": "2025-03-01"}, None),
        ("per-1", {"start": "2025-03-12", "_start": EXTENSION, "end": "2025-03-10"}, False),
        ("per-1", {"start": "2025-03-12", "_start": "x", "end": "2025-03-10"}, None),
        ("ref-1", {"display": "Dr X"}, True),
        ("ref-1", {"reference": "Patient/1"}, True),
        ("ref-1", {"reference": "#goal-1"}, None),
        ("qty-3", {"value": 5, "code": "mg"}, False),
        ("qty-3", {"value": 5}, True),
        ("cpt-2", {"value": "08-123 456"}, False),
        ("cpt-2", {"value": "08-123 456", "system": "phone"}, True),
    ],
)
def test_what_the_native_checks_decide(key: str, node: Any, verdict: bool | None) -> None:
    assert assert_agree(key, EXPRESSIONS[key], node) is verdict


@EVIDENCE
@given(start=date_times, end=date_times)
def test_dates_are_ordered_as_fhirpath_orders_them(start: str, end: str) -> None:
    """datetimes.compare gives fhirpathpy's <= and >= of the two as dateTimes, [] included."""
    order = compare(start, end)
    node = {"start": start, "end": end}
    expected = {
        "<=": [] if order is None else [order <= 0],
        ">=": [] if order is None else [order >= 0],
    }
    for operator, result in expected.items():
        assert fhirpath(f"start.toDateTime() {operator} end.toDateTime()", node, node) == result
    assert assert_agree("per-1", PER_1, node) is (order is None or order <= 0)


@pytest.mark.parametrize(
    ("start", "end", "order"),
    [
        ("2024", "2024", 0),
        ("2024", "2025-01", -1),
        ("2024-05", "2024", None),
        ("2024-05-01", "2024-05-01T10:00:00+02:00", None),
        ("2024-05-01", "2024-05-01T00:30:00+01:00", 1),  # 2024-04-30T23:30:00Z
        ("2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z", 0),
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000Z", 0),
        ("2024-05-01T10:00:00.1Z", "2024-05-01T10:00:00.09Z", 1),
        # A leap second is a second: fhirpathpy raises on it (no Python time has second 60).
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z", 1),
        ("2017-01-01T00:59:60+01:00", "2016-12-31T23:59:59.5Z", 1),
    ],
)
def test_what_date_comparison_gives(start: str, end: str, order: int | None) -> None:
    assert compare(start, end) == order
    assert compare(end, start) == (None if order is None else -order)


@pytest.mark.parametrize(
    "value",
    [
        *["", "2024-13", "2024-02-30", "0000", "2024-05-01T10:00:00", "2024-05-01T10:00Z"],
        *["2024\n", "2024-05-01T24:00:00Z", "0001-01-01T00:00:00+01:00"],
    ],
)
def test_what_is_no_date_to_compare(value: str) -> None:
    with pytest.raises(ValueError, match=r"^not a "):
        compare(value, "2024")
