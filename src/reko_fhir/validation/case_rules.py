"""The contract's own checks: Swedish identifiers, and the rules across resources.

Rules across resources (``profiles/contract.md``, contract 2): consent before disclosure,
coordination needs consent, reference integrity, the 90-day focus; rule 5 (no diagnosis) is in
``diagnosis.py``. They run wherever the context is: a Bundle (:class:`BundleResolver`) or the
store, through the :class:`Resolver` protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from reko_fhir.domain import DomainError, HsaId, OrganisationNumber, PatientId, PatientIdKind
from reko_fhir.mapping import codings as c
from reko_fhir.outcomes import Issue, IssueCode, error, warning
from reko_fhir.validation.json_shapes import as_array, as_object, as_objects, as_text

Json = dict[str, Any]
FOCUS_DAYS = timedelta(days=90)
COORDINATION_CODES = ("GC001", "DV077", "AW026")
_PATIENT_SYSTEMS = {
    c.PERSONNUMMER: PatientIdKind.PERSONNUMMER,
    c.SAMORDNINGSNUMMER: PatientIdKind.SAMORDNINGSNUMMER,
}


def objects(node: Any, where: str) -> Iterator[tuple[Json, str]]:
    """Every JSON object inside a resource with its FHIRPath; contained resources excluded."""
    return iter(json_objects(node, where, skip="contained"))


def json_objects(
    node: Any,
    where: str,
    skip: str | None = None,
    keep: Callable[[Json], bool] | None = None,
) -> list[tuple[Json, str]]:
    """Every JSON object in ``node`` (those ``keep`` keeps) with its FHIRPath, depth first in
    document order; with ``skip="contained"``, not the contained resources."""
    if skip not in (None, "contained"):
        raise ValueError(f"only contained resources are left out, not {skip}")
    return select_objects(node, where, [(keep, skip is None)])[0]


def select_objects(
    node: Any,
    where: str,
    selectors: list[tuple[Callable[[Json], bool] | None, bool]],
    having: str | None = None,
) -> list[list[tuple[Json, str]]]:
    """For each (keep, with contained resources) selector, the JSON objects in ``node`` it keeps
    with their FHIRPaths, depth first in document order: one walk for them all. ``having``: a
    key every object kept has (the others are not offered to the selectors)."""
    found: list[list[tuple[Json, str]]] = [[] for _ in selectors]
    pairs = list(zip(selectors, found, strict=True))

    def visit(current: Json, path: str, inside: bool) -> None:
        if having is None or having in current:
            for (keep, contained), kept in pairs:
                if (contained or not inside) and (keep is None or keep(current)):
                    kept.append((current, path))
        for key, value in current.items():
            if type(value) is str:
                continue  # most values: nothing below
            if isinstance(value, list):
                deeper = inside or key == "contained"
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        visit(item, f"{path}.{key}[{i}]", deeper)
            elif isinstance(value, dict):
                visit(value, f"{path}.{key}", inside or key == "contained")

    # Recursive, as the profile walk is (inputs.py refuses documents too deep for either).
    if isinstance(node, dict):
        visit(node, where, False)
    return found


def identifiers(resource: Json, where: str) -> Iterator[tuple[Json, str]]:
    """Every Identifier-shaped object (system + value) in a resource, with its FHIRPath."""
    return iter(json_objects(resource, where, skip="contained", keep=identifier_shaped))


def identifier_shaped(node: Json) -> bool:
    """system and value, both strings (contained resources are not looked in)."""
    return isinstance(node.get("system"), str) and isinstance(node.get("value"), str)


# The systems identifier_issues checks the values of (an identifier of another system is not)
IDENTIFIER_SYSTEMS = frozenset({*_PATIENT_SYSTEMS, *c.HSA_SYSTEMS, c.ORG_NUMBER})


def identifier_issues(
    resource: Json, where: str, shaped: list[tuple[Json, str]] | None = None
) -> list[Issue]:
    """Personnummer/samordningsnummer (date, Luhn), HSA-id format, organisation number.

    ``shaped``: the identifiers, when found already (select_objects with identifier_shaped)."""
    found: list[Issue] = []
    for ident, path in identifiers(resource, where) if shaped is None else shaped:
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
        for entry in as_objects(bundle.get("entry")):
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            if isinstance(entry.get("fullUrl"), str):
                found.entries[entry["fullUrl"]] = resource
            if isinstance(resource.get("id"), str) and resource["id"]:
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
            ref = as_text(as_object(resource.get(element)).get("reference"))
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


def _identity(ref: str | Json | None, resolver: Resolver) -> tuple[Json | None, set[Any]]:
    """What a reference (a ``reference`` string or a Reference) names: the resource it resolves
    to, and the identifiers (system, value) of that resource and of a logical reference."""
    if isinstance(ref, str):
        ref = {"reference": ref}
    if not isinstance(ref, dict):
        return None, set()
    target = resolver.resolve(ref["reference"]) if isinstance(ref.get("reference"), str) else None
    idents = [*as_objects((target or {}).get("identifier")), ref.get("identifier")]
    keys = {
        (i.get("system"), i.get("value"))
        for i in idents
        if isinstance(i, dict) and i.get("system") and i.get("value")
    }
    if isinstance(ref.get("reference"), str):
        keys.add(("reference", ref["reference"]))
    return target, keys


def _same_organization(a: str | Json | None, b: str | Json | None, resolver: Resolver) -> bool:
    """Two references name one organisation: the same reference, the same resource, or the same
    identifier (system and value; a logical reference's ``identifier`` counts too)."""
    first, first_keys = _identity(a, resolver)
    second, second_keys = _identity(b, resolver)
    if first is not None and first is second:
        return True
    return bool(first_keys & second_keys)


def in_force(consent: Json, day: date) -> bool:
    """Active (or revoked later) on ``day``, with a provision period that covers it."""
    if consent.get("status") not in ("active", "inactive"):
        return False
    period = as_object(as_object(consent.get("provision")).get("period"))
    start, end = _day(period.get("start")), _day(period.get("end"))
    if start is None or day < start or (end is not None and day > end):
        return False
    return not (consent.get("status") == "inactive" and end is None)


def covers(consent: Json, day: date, org_ref: str | None, resolver: Resolver) -> bool:
    """In force on ``day`` and (when an organisation is given) naming that very organisation.

    Contract 2, rule 1: an organisation of the same actor type is not covered.
    """
    if not in_force(consent, day):
        return False
    if org_ref is None:
        return True
    return any(
        _same_organization(actor.get("reference"), org_ref, resolver)
        for actor in as_objects(as_object(consent.get("provision")).get("actor"))
    )


def _kva_code(procedure: Json) -> str | None:
    for x in as_objects(as_object(procedure.get("code")).get("coding")):
        if x.get("system") == c.KVA and as_text(x.get("code")) in COORDINATION_CODES:
            return str(x["code"])
    return None


def performer_unit(procedure: Json, resolver: Resolver) -> Json | None:
    """The care unit of the Procedure's performer (a Reference): its PractitionerRole's
    ``organization``, else ``performer.onBehalfOf``; None when the context does not say."""
    for performer in as_objects(procedure.get("performer")):
        actor = as_object(performer.get("actor")).get("reference")
        role = resolver.resolve(actor) if isinstance(actor, str) else None
        if role is not None and role.get("resourceType") == "PractitionerRole":
            unit = role.get("organization")
            if isinstance(unit, dict) and unit:
                return unit
        behalf = performer.get("onBehalfOf")
        if isinstance(behalf, dict) and behalf:
            return behalf
    return None


def _consent_issues(
    resource: Json, where: str, day: date, consents: list[Json], resolver: Resolver
) -> list[Issue]:
    """Rule 2: a coordination Procedure needs a consent in force, given to its own unit."""
    code = _kva_code(resource)
    if code is None:
        return []
    current = [x for x in consents if in_force(x, day)]
    if not current:
        return [
            error(
                IssueCode.BUSINESS_RULE,
                f"coordination ({code}) on {day.isoformat()} has no consent in force",
                f"{where}.code",
            )
        ]
    unit = performer_unit(resource, resolver)
    if unit is None:
        return []
    if any(
        _same_organization(org, unit, resolver)
        for x in current
        for org in as_objects(x.get("organization"))
    ):
        return []
    target, _ = _identity(unit, resolver)
    name = (target or {}).get("name") or unit.get("display") or unit.get("reference", "")
    return [
        error(
            IssueCode.BUSINESS_RULE,
            f"coordination ({code}) on {day.isoformat()} by {name}: the consent in force "
            "was given to another care unit",
            f"{where}.code",
        )
    ]


def _own_episode(patient: str, day: date, unit: Json | None, resolver: Resolver) -> Json | None:
    """Rule 4: the patient's episode at the performer's unit whose period covers ``day``
    (the latest start when several do)."""
    found: list[tuple[date, Json]] = []
    for episode in resolver.episodes_for(patient):
        managing = episode.get("managingOrganization")
        if unit is not None and not _same_organization(managing, unit, resolver):
            continue
        period = as_object(episode.get("period"))
        start, end = _day(period.get("start")), _day(period.get("end"))
        if start is not None and start <= day and (end is None or day <= end):
            found.append((start, episode))
    return max(found, key=lambda f: f[0])[1] if found else None


def _focus_issues(
    resource: Json, where: str, day: date, patient: str, resolver: Resolver
) -> list[Issue]:
    if _kva_code(resource) != "GC001":
        return []
    episode = _own_episode(patient, day, performer_unit(resource, resolver), resolver)
    starts = [
        d
        for ext in as_objects((episode or {}).get("extension"))
        if ext.get("url") == c.EXT_SICK_LEAVE
        for part in as_objects(ext.get("extension"))
        if part.get("url") == "start"
        if (d := _day(part.get("valueDate"))) is not None
    ]
    if not starts or day - min(starts) <= FOCUS_DAYS:
        return []
    return [
        warning(
            IssueCode.BUSINESS_RULE,
            f"coordination {(day - min(starts)).days} days after the sick leave began "
            "(the focus is the first 90 days)",
            f"{where}.performed",
        )
    ]


def rule_issues(resource: Json, where: str, resolver: Resolver) -> list[Issue]:
    """Rules 1, 2 and 4 of the contract for one Procedure or Communication."""
    kind = resource.get("resourceType")
    if kind not in ("Procedure", "Communication"):
        return []
    patient = as_text(as_object(resource.get("subject")).get("reference")) or ""
    when = resource.get("performedDateTime") or as_object(resource.get("performedPeriod")).get(
        "start"
    )
    day = _day(resource.get("sent") if kind == "Communication" else when)
    if day is None or not patient:
        return []
    consents = resolver.consents_for(patient)
    found: list[Issue] = []
    disclosures: list[tuple[str, str]] = []
    if kind == "Procedure":
        for i, ext in enumerate(as_array(resource.get("extension"))):
            if isinstance(ext, dict) and ext.get("url") == c.EXT_EXTERNAL_ACTOR:
                ref = as_text(as_object(ext.get("valueReference")).get("reference"))
                if ref:
                    disclosures.append((ref, f"{where}.extension[{i}]"))
    else:
        for i, recipient in enumerate(as_array(resource.get("recipient"))):
            if isinstance(recipient, dict) and as_text(recipient.get("reference")):
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
    if kind == "Procedure":
        found += _consent_issues(resource, where, day, consents, resolver)
        found += _focus_issues(resource, where, day, patient, resolver)
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
