"""The contract's own checks: Swedish identifiers, and the rules across resources.

Rules across resources (``profiles/contract.md``): consent before disclosure, coordination
needs consent, reference integrity, and the 90-day focus. They run wherever the context is: a
Bundle (:class:`BundleResolver`) or, later, the store, through the :class:`Resolver` protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from reko_fhir.domain import DomainError, HsaId, OrganisationNumber, PatientId, PatientIdKind
from reko_fhir.mapping import codings as c
from reko_fhir.outcomes import Issue, IssueCode, error, warning

Json = dict[str, Any]
FOCUS_DAYS = timedelta(days=90)
_PATIENT_SYSTEMS = {
    c.PERSONNUMMER: PatientIdKind.PERSONNUMMER,
    c.SAMORDNINGSNUMMER: PatientIdKind.SAMORDNINGSNUMMER,
}


def objects(node: Any, where: str) -> Iterator[tuple[Json, str]]:
    """Every JSON object inside a resource with its FHIRPath; contained resources excluded."""
    if isinstance(node, dict):
        yield node, where
        for key, value in node.items():
            if key == "contained":
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    yield from objects(item, f"{where}.{key}[{i}]")
            elif isinstance(value, dict):
                yield from objects(value, f"{where}.{key}")


def identifiers(resource: Json, where: str) -> Iterator[tuple[Json, str]]:
    """Every Identifier-shaped object (system + value) in a resource, with its FHIRPath."""
    for node, path in objects(resource, where):
        if isinstance(node.get("system"), str) and isinstance(node.get("value"), str):
            yield node, path


def identifier_issues(resource: Json, where: str) -> list[Issue]:
    """Personnummer/samordningsnummer (date, Luhn), HSA-id format, organisation number."""
    found: list[Issue] = []
    for ident, path in identifiers(resource, where):
        system, value = ident["system"], ident["value"]
        try:
            if system in _PATIENT_SYSTEMS:
                parsed = PatientId(value)
                if parsed.kind is not _PATIENT_SYSTEMS[system]:
                    found.append(
                        error(
                            IssueCode.VALUE,
                            f"the number is a {parsed.kind}, not a {_PATIENT_SYSTEMS[system]}",
                            f"{path}.value",
                        )
                    )
            elif system in c.HSA_SYSTEMS:
                HsaId(value)
            elif system == c.ORG_NUMBER:
                OrganisationNumber(value)
        except DomainError as exc:
            found.append(error(IssueCode.VALUE, exc.message, f"{path}.value"))
    return found


class Resolver(Protocol):
    """Finds what a rule needs beyond the resource at hand (a Bundle's entries, or the store)."""

    def resolve(self, reference: str) -> Json | None: ...

    def consents_for(self, patient: str) -> list[Json]: ...

    def episodes_for(self, patient: str) -> list[Json]: ...


@dataclass(slots=True)
class BundleResolver:
    """Resolves references among the entries of one Bundle (by fullUrl and ``Type/id``)."""

    entries: dict[str, Json] = field(default_factory=dict)

    @classmethod
    def of(cls, bundle: Json) -> BundleResolver:
        found = cls()
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            if isinstance(entry.get("fullUrl"), str):
                found.entries[entry["fullUrl"]] = resource
            if resource.get("id"):
                found.entries[f"{resource.get('resourceType')}/{resource['id']}"] = resource
        return found

    def resolve(self, reference: str) -> Json | None:
        return self.entries.get(reference)

    def _key(self, resource: Json) -> str:
        return next(k for k, v in self.entries.items() if v is resource)

    def _for(self, kind: str, element: str, patient: str) -> list[Json]:
        target = self.resolve(patient)
        out = []
        for resource in {id(v): v for v in self.entries.values()}.values():
            if resource.get("resourceType") != kind:
                continue
            ref = (resource.get(element) or {}).get("reference")
            if ref == patient or (
                target is not None and ref is not None and self.resolve(ref) is target
            ):
                out.append(resource)
        return out

    def consents_for(self, patient: str) -> list[Json]:
        return self._for("Consent", "patient", patient)

    def episodes_for(self, patient: str) -> list[Json]:
        return self._for("EpisodeOfCare", "patient", patient)


def _day(value: object) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _actor_type(organization: Json | None) -> str | None:
    for ext in (organization or {}).get("extension", []):
        if ext.get("url") == c.EXT_ACTOR_TYPE:
            return (ext.get("valueCoding") or {}).get("code")
    return None


def covers(consent: Json, day: date, org_ref: str | None, resolver: Resolver) -> bool:
    """In force on ``day`` and (when an organisation is given) naming it or one of its type."""
    if consent.get("status") not in ("active", "inactive"):
        return False
    period = (consent.get("provision") or {}).get("period") or {}
    start, end = _day(period.get("start")), _day(period.get("end"))
    if start is None or day < start or (end is not None and day > end):
        return False
    if consent.get("status") == "inactive" and end is None:
        return False
    if org_ref is None:
        return True
    target = resolver.resolve(org_ref)
    wanted_type = _actor_type(target)
    for actor in (consent.get("provision") or {}).get("actor", []):
        named_ref = (actor.get("reference") or {}).get("reference")
        if named_ref == org_ref:
            return True
        named = resolver.resolve(named_ref) if named_ref else None
        if named is not None and (
            named is target or (wanted_type and _actor_type(named) == wanted_type)
        ):
            return True
    return False


def _is_gc001(procedure: Json) -> bool:
    return any(
        x.get("system") == c.KVA and x.get("code") == "GC001"
        for x in (procedure.get("code") or {}).get("coding", [])
    )


def rule_issues(resource: Json, where: str, resolver: Resolver) -> list[Issue]:
    """Rules 1, 2 and 4 of the contract for one Procedure or Communication."""
    kind = resource.get("resourceType")
    if kind not in ("Procedure", "Communication"):
        return []
    patient = ((resource.get("subject") or {}).get("reference")) or ""
    when = resource.get("performedDateTime") or (resource.get("performedPeriod") or {}).get("start")
    day = _day(resource.get("sent") if kind == "Communication" else when)
    if day is None or not patient:
        return []
    consents = resolver.consents_for(patient)
    found: list[Issue] = []
    disclosures: list[tuple[str, str]] = []
    if kind == "Procedure":
        for i, ext in enumerate(resource.get("extension", [])):
            if ext.get("url") == c.EXT_EXTERNAL_ACTOR:
                ref = (ext.get("valueReference") or {}).get("reference")
                if ref:
                    disclosures.append((ref, f"{where}.extension[{i}]"))
    else:
        for i, recipient in enumerate(resource.get("recipient", [])):
            if recipient.get("reference"):
                disclosures.append((recipient["reference"], f"{where}.recipient[{i}]"))
    for ref, path in disclosures:
        if not any(covers(consent, day, ref, resolver) for consent in consents):
            name = (resolver.resolve(ref) or {}).get("name", ref)
            found.append(
                error(
                    IssueCode.BUSINESS_RULE,
                    f"no consent of the patient covers disclosure to {name} on {day.isoformat()}",
                    path,
                )
            )
    if kind == "Procedure" and _is_gc001(resource):
        if not any(covers(consent, day, None, resolver) for consent in consents):
            found.append(
                error(
                    IssueCode.BUSINESS_RULE,
                    f"coordination (GC001) on {day.isoformat()} has no consent in force",
                    f"{where}.code",
                )
            )
        starts = [
            d
            for e in resolver.episodes_for(patient)
            for ext in e.get("extension", [])
            if ext.get("url") == c.EXT_SICK_LEAVE
            for part in ext.get("extension", [])
            if part.get("url") == "start"
            if (d := _day(part.get("valueDate"))) is not None
        ]
        if starts and day - min(starts) > FOCUS_DAYS:
            found.append(
                warning(
                    IssueCode.BUSINESS_RULE,
                    f"coordination {(day - min(starts)).days} days after the sick leave began "
                    "(the focus is the first 90 days)",
                    f"{where}.performed",
                )
            )
    return found


def reference_issues(resource: Json, where: str, resolver: Resolver) -> list[Issue]:
    """Rule 3: every ``urn:uuid:`` or ``Type/id`` reference resolves."""
    found: list[Issue] = []
    for node, path in objects(resource, where):
        ref = node.get("reference")
        if not isinstance(ref, str) or ref.startswith("#"):
            continue
        local = ref.startswith("urn:") or ref.count("/") == 1
        if local and resolver.resolve(ref) is None:
            found.append(
                error(IssueCode.NOT_FOUND, f"the reference '{ref}' does not resolve", path)
            )
    return found
