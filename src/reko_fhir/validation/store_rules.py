"""The rules across resources, checked against what the store holds (not only a Bundle).

Before a Procedure or Communication is written, the patient's consents and episodes and the
organisations they name are read from the store; the contract's rules then run on them
exactly as they do on a Bundle (https://hl7.org/fhir/R4/http.html#transaction for context).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from reko_fhir.mapping import codings as c
from reko_fhir.outcomes import Issue
from reko_fhir.store import Search, Stored
from reko_fhir.store.context import PatientRows
from reko_fhir.validation.case_rules import BundleResolver, rule_issues
from reko_fhir.validation.json_shapes import as_object, as_objects, as_text

Json = dict[str, Any]


class Reader(Protocol):
    """What the rules read: the repository, or the unit of work of a transaction."""

    async def search(self, resource_type: str, search: Search) -> list[Stored]: ...

    async def read(self, resource_type: str, resource_id: str) -> Stored: ...

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]: ...

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]: ...


@runtime_checkable
class OneQueryReader(Protocol):
    """A reader that reads the whole context in one query (the store's unit of work)."""

    async def patient_rows(
        self, patient: str, types: tuple[str, ...], roles: list[str], organizations: list[str]
    ) -> PatientRows: ...


async def store_rule_issues(
    repository: Reader,
    resource: Json,
    written_with: list[Json] | None = None,
    where: str | None = None,
) -> list[Issue]:
    """The consent rules for ``resource``, with the store and ``written_with`` (the other
    resources of the same transaction) as context."""
    kind = resource.get("resourceType")
    # A value of the wrong JSON type is the profile walk's error at its element: not read here.
    patient = as_text(as_object(resource.get("subject")).get("reference"))
    if kind not in ("Procedure", "Communication") or patient is None:
        return []
    organizations = {
        as_text(as_object(ext.get("valueReference")).get("reference"))
        for ext in as_objects(resource.get("extension"))
        if ext.get("url") == c.EXT_EXTERNAL_ACTOR
    } | {as_text(r.get("reference")) for r in as_objects(resource.get("recipient"))}
    roles = {
        as_text(as_object(p.get("actor")).get("reference"))
        for p in as_objects(resource.get("performer"))
    }
    resolver = await patient_context(
        repository, patient, organizations, written_with, resource, roles=roles
    )
    return rule_issues(resource, where or str(kind), resolver)


async def patient_context(
    repository: Reader,
    patient: str,
    organizations: set[str | None],
    written_with: list[Json] | None = None,
    resource: Json | None = None,
    *,
    roles: set[str | None] | None = None,
) -> BundleResolver:
    """The patient's consents and episodes, the organisations they and ``organizations`` name,
    the performers' PractitionerRoles (``roles``: rule 2 needs their care unit), and
    ``written_with`` (except ``resource``), as one resolver for the rules."""
    role_ids = sorted(_ids_of("PractitionerRole", roles or set()))
    known = sorted(_ids_of("Organization", organizations))
    rows = await patient_rows_of(repository, patient, _CONTEXT, role_ids, known)
    context, found_roles, looked_for = rows.about, rows.roles, rows.looked_for
    found_organizations = list(rows.organizations)
    organizations = set(organizations)
    for consent in context:
        for actor in as_objects(as_object(consent.resource.get("provision")).get("actor")):
            organizations.add(as_text(as_object(actor.get("reference")).get("reference")))
    entries = [{"resource": s.resource} for s in context]
    entries += [{"resource": r} for r in written_with or [] if r is not resource]
    # the performers' care units, for the unit rule and its message
    entries += [{"resource": s.resource} for s in found_roles]
    organizations |= {
        as_text(as_object(s.resource.get("organization")).get("reference")) for s in found_roles
    }
    ids = sorted(_ids_of("Organization", organizations))
    missing = [i for i in ids if i not in looked_for]
    if missing:  # one query for all; an unknown organisation then simply gives no cover
        found_organizations += await repository.read_current("Organization", missing)
    wanted = set(ids)
    entries += [{"resource": s.resource} for s in found_organizations if s.id in wanted]
    return BundleResolver.of({"entry": entries})


_CONTEXT = ("Consent", "EpisodeOfCare")


async def patient_rows_of(
    reader: Reader, patient: str, types: tuple[str, ...], roles: list[str], organizations: list[str]
) -> PatientRows:
    """What the rules read about ``patient``: in one query when ``reader`` offers it, else
    read by read (the Organizations then all by the caller). A wrapper of a unit (the guarded
    session) offers ``patient_rows`` by calling this on what it wraps."""
    if isinstance(reader, OneQueryReader):
        return await reader.patient_rows(patient, types, roles, organizations)
    about = await reader.about_patient(patient, types)
    found_roles = await reader.read_current("PractitionerRole", roles) if roles else []
    return PatientRows(about, found_roles, [])


def _ids_of(kind: str, references: set[str | None]) -> set[str]:
    return {
        r.split("/", 1)[1]
        for r in references
        if isinstance(r, str) and r.startswith(f"{kind}/") and "," not in r
    }
