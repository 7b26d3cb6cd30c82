"""Who may see and change what: SMART scopes per interaction, and the care-unit filter.

Patientdatalagen lets only those in a patient's care see the patient's records. A token acts
for one care unit (an HSA-id); it sees the resources that unit holds — those naming the unit's
Organization or its staff (PractitionerRole), see :func:`reko_fhir.store.index.unit_references`
— and the Patients in that unit's care. Everything else answers as absent: 404 on read, left
out of searches and their totals (the filter is part of the SQL query, not applied after it).
Organizations and PractitionerRoles are the directory and visible to every caller with the
scope. An external actor (Försäkringskassan) sees only Communications addressed to it, and only
while a consent of the patient covers that disclosure today.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reko_fhir.mapping import codings as c
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.rest.store_rules import Reader, patient_context
from reko_fhir.security.tokens import Principal
from reko_fhir.store import Search, Stored
from reko_fhir.store.index import unit_references
from reko_fhir.store.unit import MATCH_LIMIT, not_found
from reko_fhir.validation.case_rules import covers

Json = dict[str, Any]
DIRECTORY = frozenset({"Organization", "PractitionerRole"})
EXTERNAL_READS = frozenset({"read", "search-type"})


def forbidden(message: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.FORBIDDEN, message, None)], status=403)


class UnitDirectory:
    """Who holds for each care unit (its Organizations and their PractitionerRoles), kept a
    few seconds: every request of a unit needs it, and looking it up costs two queries.

    Only found units are kept (a unit whose Organization is written next is seen at once), and
    a write refused by a kept answer asks again (:meth:`CareUnitAccess.check_write`); a role
    moved to another unit keeps its old unit's view for at most ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def units(
        self, reader: Reader, identifier: str, *, fresh: bool = False
    ) -> tuple[str, ...]:
        now = time.monotonic()
        kept = self._known.get(identifier)
        if kept is not None and kept[0] > now and not fresh:
            return kept[1]
        # An HSA-id is unique whichever of the two HSA systems carries it.
        organizations = await reader.search(
            "Organization", Search((("identifier", identifier),), MATCH_LIMIT)
        )
        refs = tuple(f"Organization/{o.id}" for o in organizations)
        roles = await reader.search("PractitionerRole", Search((), MATCH_LIMIT, units=refs))
        found = refs + tuple(f"PractitionerRole/{r.id}" for r in roles)
        if found:
            if len(self._known) > 10_000:  # bounded: one entry per unit calling
                self._known.clear()
            self._known[identifier] = (now + self.ttl, found)
        return found


class CareUnitAccess:
    """The :class:`reko_fhir.rest.access.Access` of one request's :class:`Principal`."""

    def __init__(self, principal: Principal, directory: UnitDirectory | None = None) -> None:
        self.principal = principal
        self.directory = directory or UnitDirectory(ttl=0.0)
        self._units: tuple[str, ...] | None = None

    async def allow(self, resource_type: str, interaction: str) -> None:
        who = self.principal
        if who.external_actor and (
            resource_type != "Communication" or interaction not in EXTERNAL_READS
        ):
            raise forbidden("an external actor may only read Communications addressed to it")
        if not who.scopes.allows_interaction(resource_type, interaction):
            raise forbidden(f"the token's scopes do not allow {interaction} on {resource_type}")

    async def units(self, reader: Reader, *, fresh: bool = False) -> tuple[str, ...]:
        """The caller's Organization(s) and their PractitionerRoles, as references."""
        if self._units is not None and not fresh:
            return self._units
        identifier = self.principal.care_unit or self.principal.external_actor or ""
        self._units = await self.directory.units(reader, identifier, fresh=fresh)
        return self._units

    async def restrict(self, reader: Reader, resource_type: str, search: Search) -> Search:
        if self.principal.all_units or resource_type in DIRECTORY:
            return search
        return replace(search, units=await self.units(reader))

    async def visible(self, reader: Reader, resource_type: str, resource_id: str) -> bool:
        if self.principal.all_units or resource_type in DIRECTORY:
            return True
        search = await self.restrict(reader, resource_type, Search((("_id", resource_id),), 1))
        return bool(await self.release(reader, await reader.search(resource_type, search)))

    async def sees(self, reader: Reader, stored: Stored) -> bool:
        kind = stored.resource["resourceType"]
        if self.principal.all_units or kind in DIRECTORY:
            return True
        if kind == "Patient":  # in a unit's care through other resources: a query decides
            return await self.visible(reader, kind, stored.id)
        # The same holders the store indexed for the search filter (index.unit_references).
        if not unit_references(stored.resource) & set(await self.units(reader)):
            return False
        return bool(await self.release(reader, [stored]))

    async def check_write(self, reader: Reader, before: Stored | None, after: Json | None) -> None:
        who = self.principal
        if who.external_actor:
            raise forbidden("an external actor may not write")
        if who.all_units:
            return
        if before is not None and not await self.sees(reader, before):
            raise not_found(before.resource["resourceType"], before.id)
        if after is None or after.get("resourceType") == "Organization":
            return
        kind = str(after.get("resourceType"))
        held_by = unit_references(after)
        if not held_by:
            if kind == "Patient":
                return  # a new patient is in a unit's care once that unit records care
            raise forbidden(f"the {kind} names no care unit or staff that holds it")
        if held_by & set(await self.units(reader)):
            return
        # The unit's own Organization may have been written earlier in this transaction.
        if not held_by & set(await self.units(reader, fresh=True)):
            raise forbidden(f"the {kind} is held by another care unit than the token's")

    async def release(self, reader: Reader, found: list[Stored]) -> list[Stored]:
        if not self.principal.external_actor:
            return found
        today = datetime.now(UTC).date()
        mine = [u for u in await self.units(reader) if u.startswith("Organization/")]
        released = []
        for stored in found:
            patient = (stored.resource.get("subject") or {}).get("reference")
            if not isinstance(patient, str):
                continue
            resolver = await patient_context(reader, patient, set(mine))
            consents = resolver.consents_for(patient)
            if any(covers(consent, today, org, resolver) for consent in consents for org in mine):
                released.append(stored)
        return released

    @property
    def filters_after_search(self) -> bool:
        return self.principal.external_actor is not None

    def audit_unit(self) -> str | None:
        return None if self.principal.all_units else self.principal.on_behalf_of

    def provenance(self, stored: Stored, activity: str) -> Json | None:
        """Who wrote it, for which unit, from which system (https://hl7.org/fhir/R4/provenance.html)."""
        kind = stored.resource["resourceType"]
        if kind == "Provenance":
            return None
        who = self.principal
        author: Json = {
            "type": _coding(PARTICIPANT, "author"),
            "who": {"identifier": {"system": c.HSA, "value": who.subject}},
        }
        if who.care_unit:
            on_behalf: Json = {"identifier": {"system": c.HSA, "value": who.care_unit}}
            organizations = [u for u in self._units or () if u.startswith("Organization/")]
            if organizations:
                on_behalf["reference"] = organizations[0]
            author["onBehalfOf"] = on_behalf
        agents = [author]
        if who.client_id:
            agents.append(
                {"type": _coding(PARTICIPANT, "assembler"), "who": {"display": who.client_id}}
            )
        return {
            "resourceType": "Provenance",
            "target": [{"reference": f"{kind}/{stored.id}/_history/{stored.version}"}],
            "recorded": stored.last_updated.isoformat(),
            "activity": _coding(DATA_OPERATION, activity),
            "agent": agents,
        }


PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def _coding(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}
