"""What the native-invariant tests share: fhirpathpy's verdict beside the native one.

``assert_agree`` checks that where a check of validation/native.py decides, fhirpathpy gives
that verdict on the same node (test_native_invariants.py, test_native_datatypes.py).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from reko_fhir.validation.compiled import compiled_fhirpath
from reko_fhir.validation.native import native_check

EXTENSION = {"extension": [{"url": "http://example.org/e", "valueString": "x"}]}
PER_1 = "start.hasValue().not() or end.hasValue().not() or (start <= end)"
# fhirpathpy does not type the primitives it navigates on JSON: per-1's (start <= end) compares
# two strings there ('2024-05' <= '2024' is false). toDateTime() makes them the dateTimes they
# are, and that is the reading the native check is compared with.
FHIRPATH_FORMS = {
    PER_1: "start.hasValue().not() or end.hasValue().not()"
    " or (start.toDateTime() <= end.toDateTime())",
}
# Invariants whose FHIRPath can be empty, [] (per-1 when the precisions leave the order
# unknown, ref-1 without a reference): that holds, as [True] does, and the check says True.
EMPTY_HOLDS = {"per-1", "ref-1"}


def fhirpath(expression: str, node: Any, resource: Any, root: Any = None) -> Any:
    """What the validator gets from fhirpathpy: the result, or the exception it raised."""
    check = compiled_fhirpath(FHIRPATH_FORMS.get(expression, expression))
    assert check is not None
    context = {"resource": resource, "rootResource": resource if root is None else root}
    try:
        return check(node, context)
    except Exception as exc:
        return exc


def as_fhirpathpy_sees(key: str, node: Any) -> Any:
    """per-1: a start with a value and extensions (``_start``) is one node with a value in
    FHIRPath; fhirpathpy makes two items of it, whose hasValue() is false. It is compared with
    fhirpathpy on the value alone."""
    if key != "per-1" or not isinstance(node, dict):
        return node
    return {
        k: v
        for k, v in node.items()
        if not (k in ("_start", "_end") and node.get(k[1:]) is not None)
    }


def assert_agree(
    key: str, expression: str, node: Any, resource: Any = None, root: Any = None
) -> bool | None:
    """The native verdict on ``node``, after checking fhirpathpy gives exactly that."""
    check = native_check(key, expression)
    assert check is not None
    verdict = check(node)
    if verdict is not None:
        seen = as_fhirpathpy_sees(key, node)
        result = fhirpath(expression, seen, node if resource is None else resource, root)
        expected = [[True], []] if verdict and key in EMPTY_HOLDS else [[verdict]]
        assert result in expected, (key, node, result)
    return verdict


# Nodes of the data types with native invariants: Period (per-1), Reference (ref-1), Quantity
# (qty-3), ContactPoint (cpt-2). Every native check meets them (test_native_invariants.py).
DATATYPE_EDGE_NODES: list[Any] = [
    {"start": "2024-01-01", "end": "2023-12-31"},
    {"start": "2024-01-01", "end": "2024-01-01"},
    {"start": "2024-05", "end": "2024"},
    {"start": "2024", "end": "2024-05"},
    {"start": "2024-01-01T10:00:00+02:00", "end": "2024-01-01T09:30:00+01:00"},
    {"start": "2024-01-01T09:30:00+01:00", "end": "2024-01-01T10:00:00+02:00"},
    {"start": "2024-01-02", "end": "2024-01-02T00:30:00+01:00"},
    {"start": "2024-01-01", "end": "2024-01-01T23:30:00-01:00"},
    {"start": "2024-01-01T10:00:00Z", "end": "2024-01-01T10:00:00.000+00:00"},
    {"start": "2024-01-01T10:00:00.5Z", "end": "2024-01-01T10:00:00Z"},
    {"start": "2024-02-30", "end": "2024-01-01"},
    {"start": "2024-01-01", "_start": EXTENSION, "end": "2023-01-01"},
    {"_start": EXTENSION, "end": "2023"},
    {"start": None, "end": "x"},
    {"start": "2024", "end": 2023},
    {"start": "", "end": "2024"},
    {"start": ["2024"], "end": "2023"},
    {"display": "Dr X"},
    {"identifier": {"value": "x"}},
    {"reference": "Patient/1"},
    {"reference": ""},
    {"reference": "#p"},
    {"reference": "#"},
    {"reference": "Patient/1", "_reference": EXTENSION},
    {"reference": 1},
    {"value": 1, "code": "mg"},
    {"value": 1, "code": "mg", "system": "http://unitsofmeasure.org"},
    {"_code": EXTENSION},
    {"value": "070-123"},
    {"value": "070-123", "system": "phone"},
    {"system": "phone"},
]

# dateTimes aimed at per-1's comparisons: few values for each part, so that equal instants and
# days written with other offsets and precisions come up, and days cross in UTC. Years stay from
# 1000 on in UTC (fhirpathpy compares the parts of values of different precisions as strings:
# '999' > '2024'), seconds have at most three decimals (it compares times of the same precision
# as float timestamps).
date_times = st.builds(
    lambda year, month, day, time, zone, precision: (
        "-".join([year, month, day][:precision]) + (f"T{time}{zone}" if precision == 4 else "")
    ),
    st.sampled_from(["1001", "2024", "2025", "9998"]),
    st.sampled_from(["01", "12"]),
    st.sampled_from(["01", "31"]),
    st.sampled_from(["00:00:00", "00:30:00", "12:00:00", "23:30:00", "23:59:59.999", "00:00:00.5"]),
    st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-01:00", "+05:30", "+14:00", "-12:00"]),
    st.integers(1, 4),
)
