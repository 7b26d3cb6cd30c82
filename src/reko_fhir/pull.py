"""Pulling from an EHR: resources changed since a moment come into the store through the same
validation as any write (https://hl7.org/fhir/R4/http.html#cond-update for how they land).

Each pulled resource is a conditional update on its first business identifier, so pulling
the same changes twice stores nothing new; one without an identifier is an update by id. A
resource that fails validation is reported with its OperationOutcome and not stored; the
others still are.

It joins an adapter (the EHR target) to the FHIR router, so it sits beside the CLI, outside both
``delivery`` and ``rest``: the layers below it import neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from reko_fhir.mapping.references import rename_references
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.router import FhirRouter
from reko_fhir.store import FhirRepository

Json = dict[str, Any]
PULLED_TYPES = ("CarePlan", "Procedure")


@dataclass(frozen=True, slots=True)
class Imported:
    """What became of one pulled resource: the HTTP-like status and, when refused, why."""

    resource: str
    status: int
    outcome: Json | None = None

    @property
    def stored(self) -> bool:
        return self.status in (200, 201)


def _request(resource: Json) -> FhirRequest:
    kind = str(resource.get("resourceType", ""))
    identifiers = resource.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    if isinstance(first, dict) and first.get("value"):
        token = f"{first.get('system', '')}|{first['value']}"
        return FhirRequest("PUT", f"/{kind}", (("identifier", token),))
    return FhirRequest("PUT", f"/{kind}/{resource.get('id', '')}")


async def import_resources(
    router: FhirRouter,
    resources: Iterable[Json],
    names: Mapping[str, str] | None = None,
    *,
    repository: FhirRepository | None = None,
) -> list[Imported]:
    """Store each pulled resource (validated); return one result per resource, in order.

    ``names`` maps the source's ``Type/id`` to ours for resources we delivered there, so a
    pulled CarePlan points at our Patient, not at the EHR's copy of it. ``repository`` is the
    care unit's partition the resources belong to (default: the router's own)."""
    results: list[Imported] = []
    for resource in resources:
        incoming = rename_references(
            {k: v for k, v in resource.items() if k != "meta"}, names or {}
        )
        request = _request(incoming)
        if request.query:
            incoming.pop("id", None)  # the store keeps its own id for a matched identifier
        answer = await router.handle(request, incoming, repository=repository)
        name = f"{incoming.get('resourceType')}/{resource.get('id', '?')}"
        refused = answer.status not in (200, 201)
        results.append(Imported(name, answer.status, answer.resource if refused else None))
    return results


class Puller(Protocol):
    """Anything that lists a type's resources changed since a moment (a FhirTarget)."""

    async def pull(
        self, resource_type: str, *, since: datetime | None, patient: str | None = None
    ) -> list[Json]: ...


async def pull_into_store(
    router: FhirRouter,
    source: Puller,
    *,
    since: datetime | None,
    patient: str | None = None,
    resource_types: Iterable[str] = PULLED_TYPES,
    names: Mapping[str, str] | None = None,
    repository: FhirRepository | None = None,
) -> list[Imported]:
    """Pull ``resource_types`` from ``source`` and import them, CarePlans before activities,
    into ``repository`` (a care unit's partition, where a conditional update by identifier
    finds what the unit sent out; None: the router's own repository)."""
    results: list[Imported] = []
    for kind in resource_types:
        pulled = await source.pull(kind, since=since, patient=patient)
        results += await import_resources(router, pulled, names, repository=repository)
    return results
