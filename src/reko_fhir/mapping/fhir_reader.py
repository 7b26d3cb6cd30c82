"""Reading FHIR JSON with every problem located by its FHIRPath expression.

The from-FHIR mappers walk resources through :class:`Element`, which knows its own path
(``Bundle.entry[3].resource.performer[0].actor``); a missing or malformed element raises
:class:`FhirElementError` carrying that path, ready to become an OperationOutcome issue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from reko_fhir.outcomes import Issue, OperationOutcomeError

E = TypeVar("E", bound=StrEnum)


class MappingError(OperationOutcomeError):
    """FHIR that does not map to the domain, with every problem found, each located.

    ``issues`` holds :class:`~reko_fhir.outcomes.Issue` objects: ``expression`` is the FHIRPath
    of the element to blame (``Bundle.entry[7].resource.performer[0].actor``) and
    ``diagnostics`` the message. Being an :class:`OperationOutcomeError`, it answers an HTTP
    request as an OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html).
    """

    def __init__(self, issues: Iterable[Issue]) -> None:
        super().__init__(issues)


class FhirElementError(ValueError):
    """One problem with one element, raised while reading and collected into a MappingError."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"{expression}: {message}")
        self.expression = expression
        self.message = message


class Element:
    """A JSON object inside a resource, with the FHIRPath that leads to it."""

    __slots__ = ("data", "path")

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def fail(self, name: str | None, message: str) -> FhirElementError:
        return FhirElementError(f"{self.path}.{name}" if name else self.path, message)

    def has(self, name: str) -> bool:
        return name in self.data

    def child(self, name: str) -> Element | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, list):
            value = value[0] if value else None
            name = f"{name}[0]"
        if not isinstance(value, dict):
            raise self.fail(name, "must be an element")
        return Element(value, f"{self.path}.{name}")

    def need(self, name: str) -> Element:
        found = self.child(name)
        if found is None:
            raise self.fail(name, "is required here")
        return found

    def children(self, name: str) -> list[Element]:
        value = self.data.get(name) or []
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"{name}[{i}]", "must be an element")
            out.append(Element(item, f"{self.path}.{name}[{i}]"))
        return out

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str | int | bool):
            raise self.fail(name, "must be a primitive value")
        return str(value)

    def need_text(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise self.fail(name, "is required here")
        return value

    def enum(self, name: str, kind: type[E]) -> E:
        """Primitive ``name`` as a member of ``kind``, or a problem listing the allowed codes."""
        value = self.need_text(name)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise self.fail(name, f"'{value}' is not one of {allowed}") from None

    def date(self, name: str) -> dt.date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise self.fail(name, f"'{value}' is not a full date (YYYY-MM-DD)") from None

    def need_date(self, name: str) -> dt.date:
        value = self.date(name)
        if value is None:
            raise self.fail(name, "is required here")
        return value

    def need_datetime(self, name: str) -> dt.datetime:
        value = self.need_text(name)
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(name, f"'{value}' is not a dateTime") from None
        if parsed.tzinfo is None:
            raise self.fail(name, "a dateTime with a time needs its offset")
        return parsed

    def extensions(self, url: str) -> list[Element]:
        return [e for e in self.children("extension") if e.data.get("url") == url]

    def extension(self, url: str) -> Element | None:
        found = self.extensions(url)
        return found[0] if found else None

    def coding_in(self, name: str, system: str) -> Element | None:
        """The first coding from ``system`` in CodeableConcept(s) ``name``."""
        for concept in self.children(name):
            for coding in concept.children("coding"):
                if coding.data.get("system") == system:
                    return coding
        return None

    def need_code_in(self, name: str, system: str, kind: type[E]) -> E:
        coding = self.coding_in(name, system)
        if coding is None:
            raise self.fail(name, f"needs a coding from {system}")
        return coding.enum("code", kind)

    def identifier_value(self, systems: frozenset[str] | set[str]) -> str | None:
        for ident in self.children("identifier"):
            if ident.data.get("system") in systems:
                return ident.need_text("value")
        return None
