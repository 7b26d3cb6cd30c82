"""Requests and responses as the router sees them: method, path, query, headers, body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FhirRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base: str = ""
    """The service's base URL as the client reached it (``https://host/fhir``): links and
    ``fullUrl``s are absolute from it; empty for callers inside the process (relative ones)."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


@dataclass(slots=True)
class FhirResponse:
    status: int
    resource: Json | None = None
    headers: dict[str, str] = field(default_factory=dict)
