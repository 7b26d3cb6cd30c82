"""FHIR R4 primitive types: which JSON type carries each, and the lexical form it must have.

Regular expressions from https://hl7.org/fhir/R4/datatypes.html#primitive (the ``value``
regexes of the core StructureDefinitions).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

_DATE = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"  # noqa: E501
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_DATETIME = rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T{_TIME}{_ZONE})?)?)?"

PATTERNS: dict[str, re.Pattern[str]] = {
    # \Z, not $: $ also matches before a final newline, which let "2024\n" pass as a date.
    name: re.compile(rf"^(?:{regex})\Z")
    for name, regex in {
        "boolean": r"true|false",
        "integer": r"-?([0]|([1-9][0-9]*))",
        "unsignedInt": r"[0]|([1-9][0-9]*)",
        "positiveInt": r"\+?[1-9][0-9]*",
        "decimal": r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?",
        "date": _DATE,
        "dateTime": _DATETIME,
        "instant": rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T{_TIME}{_ZONE}",
        "time": _TIME,
        "code": r"[^\s]+( [^\s]+)*",
        "id": r"[A-Za-z0-9\-\.]{1,64}",
        "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
        "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "uri": r"\S*",
        "url": r"\S*",
        "canonical": r"\S*",
        "base64Binary": r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+",
        "string": r"[\r\n\t\S ]+",
        "markdown": r"[\r\n\t\S ]+",
    }.items()
}

NUMBER_TYPES = frozenset({"integer", "unsignedInt", "positiveInt", "decimal"})
PRIMITIVE_TYPES = frozenset(PATTERNS) | {"xhtml"}


def is_primitive(type_code: str) -> bool:
    """Primitive type codes start lower-case (``date``), complex ones upper-case (``Coding``)."""
    return type_code in PRIMITIVE_TYPES or type_code.startswith("http://hl7.org/fhirpath/")


def check_primitive(type_code: str, value: object) -> str | None:
    """A message when ``value`` is not a valid JSON value of ``type_code``, else None."""
    if type_code.startswith("http://hl7.org/fhirpath/"):  # the type of Element.id, Extension.url
        return None if isinstance(value, str) else "must be a string"
    if type_code == "boolean":
        return None if isinstance(value, bool) else "must be true or false (a JSON boolean)"
    if type_code in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"a {type_code} is a JSON number"
        if type_code != "decimal" and not isinstance(value, int):
            return f"a {type_code} is a whole number"
        if type_code == "positiveInt" and value < 1:
            return "a positiveInt is 1 or more"
        if type_code == "unsignedInt" and value < 0:
            return "an unsignedInt is 0 or more"
        return None
    if not isinstance(value, str):
        return f"a {type_code} is a JSON string"
    pattern = PATTERNS.get(type_code)
    if pattern is not None and not pattern.match(value):
        return f"'{value[:60]}' is not a valid {type_code}"
    return None


@cache
def checker(type_code: str) -> Callable[[object], str | None]:
    """``check_primitive`` for one type, its branches chosen once (the walker's commonest call).

    A string type checks its pattern directly; the others go through check_primitive."""
    pattern = PATTERNS.get(type_code)
    if pattern is None or type_code == "boolean" or type_code in NUMBER_TYPES:
        return lambda value: check_primitive(type_code, value)
    match = pattern.match

    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return f"a {type_code} is a JSON string"
        if match(value):
            return None
        return f"'{value[:60]}' is not a valid {type_code}"

    return check
