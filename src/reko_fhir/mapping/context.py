"""Who refers to whom inside one case Bundle: fullUrls on the way out, resolution on the way in."""

from __future__ import annotations

from dataclasses import dataclass, field

from reko_fhir.domain import CoordinationCase, HsaId, OrganisationNumber, SourceRef
from reko_fhir.mapping import codings
from reko_fhir.mapping.fhir_ids import full_url, source_full_url
from reko_fhir.mapping.fhir_reader import Element, FhirElementError


@dataclass(frozen=True, slots=True)
class CaseUrls:
    """The fullUrl of every resource a case maps to (https://hl7.org/fhir/R4/bundle.html#references)."""

    case: CoordinationCase

    @property
    def unit(self) -> str:
        return full_url(codings.HSA, "Organization", self.case.care_unit.hsa_id.value)

    @property
    def patient(self) -> str:
        return source_full_url(self.case.source, "Patient")

    @property
    def episode(self) -> str:
        return source_full_url(self.case.source, "EpisodeOfCare")

    @property
    def care_team(self) -> str:
        return source_full_url(self.case.source, "CareTeam")

    def record(self, resource_type: str, source: SourceRef) -> str:
        """A journal record's entry (CarePlan, Procedure…): named by its own identifier."""
        return source_full_url(source, resource_type)

    def actor(self, org: OrganisationNumber) -> str:
        return full_url(codings.ORG_NUMBER, "Organization", org.value)

    def staff(self, hsa_id: HsaId) -> str:
        return full_url(codings.HSA, "PractitionerRole", hsa_id.value)


@dataclass(slots=True)
class BundleIndex:
    """The entries of a Bundle by fullUrl and ``Type/id``, to resolve references."""

    by_url: dict[str, Element] = field(default_factory=dict)
    staff: dict[str, HsaId] = field(default_factory=dict)
    actors: dict[str, OrganisationNumber] = field(default_factory=dict)

    def add(self, resource: Element, full_url_: str | None) -> None:
        if full_url_:
            self.by_url[full_url_] = resource
        rid = resource.data.get("id")
        if rid:
            self.by_url[f"{resource.data.get('resourceType')}/{rid}"] = resource

    def _keys_of(self, resource: Element) -> list[str]:
        return [key for key, target in self.by_url.items() if target is resource]

    def register_staff(self, resource: Element, hsa_id: HsaId) -> None:
        for key in self._keys_of(resource):
            self.staff[key] = hsa_id

    def register_actor(self, resource: Element, org: OrganisationNumber) -> None:
        for key in self._keys_of(resource):
            self.actors[key] = org

    def target(self, ref: Element | None, at: Element, name: str) -> Element:
        if ref is None:
            raise at.fail(name, "is required here")
        url = ref.need_text("reference")
        if url not in self.by_url:
            raise FhirElementError(
                f"{ref.path}.reference", f"'{url}' is not an entry of this Bundle"
            )
        return self.by_url[url]

    def staff_of(self, ref: Element | None, at: Element, name: str) -> HsaId:
        target = self.target(ref, at, name)
        key = ref.data["reference"] if ref else ""
        if key not in self.staff:
            raise at.fail(
                name, f"must reference a PractitionerRole, not {target.data.get('resourceType')}"
            )
        return self.staff[key]

    def actor_of(self, ref: Element | None, at: Element, name: str) -> OrganisationNumber:
        target = self.target(ref, at, name)
        key = ref.data["reference"] if ref else ""
        if key not in self.actors:
            kind = target.data.get("resourceType")
            raise at.fail(name, f"must reference an external-actor Organization, not {kind}")
        return self.actors[key]
