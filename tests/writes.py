"""Writing fixtures in-process: the store has no update-as-create (ids are the server's over
HTTP), so a test that wants a resource under a chosen id creates it the first time and updates it
after."""

from __future__ import annotations

from reko_fhir.store import FhirRepository, FhirSession, Stored
from reko_fhir.store.repository import Json


async def put_in(unit: FhirSession, resource: Json) -> Stored:
    """Create ``resource`` under its own id, or update it when it is already stored."""
    kind, resource_id = str(resource["resourceType"]), str(resource["id"])
    if await unit.read_current(kind, [resource_id]):
        return await unit.update(resource)
    return await unit.create(resource, resource_id=resource_id)


async def put(repository: FhirRepository, resource: Json) -> Stored:
    """:func:`put_in` in a unit of its own."""
    return await repository.in_unit(lambda unit: put_in(unit, resource))
