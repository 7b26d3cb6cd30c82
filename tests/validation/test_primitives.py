"""Primitive values are checked against the whole of their FHIR regex."""

from __future__ import annotations

import pytest

from reko_fhir.validation.primitives import check_primitive


@pytest.mark.parametrize(
    ("type_code", "value"),
    [
        ("date", "2024\n"),
        ("dateTime", "2024-05-01\n"),
        ("id", "abc\n"),
        ("code", "GC001\n"),
        ("instant", "2024-05-01T10:00:00Z\n"),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_valid_value(type_code: str, value: str) -> None:
    assert check_primitive(type_code, value) is not None
    assert check_primitive(type_code, value.rstrip("\n")) is None


def test_a_string_may_hold_newlines() -> None:
    assert check_primitive("string", "two\nlines\n") is None
