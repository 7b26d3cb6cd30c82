"""The coordination case as EpisodeOfCare, and its CareTeam.

https://hl7.org/fhir/R4/episodeofcare.html, https://hl7.org/fhir/R4/careteam.html
"""

from __future__ import annotations

from typing import Any

from reko_fhir.domain import (
    ActorType,
    CareTeam,
    CoordinationCase,
    HsaId,
    KvaCode,
    RekoRole,
    RekoStatus,
    TeamMember,
)
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.context import BundleIndex, CaseUrls
from reko_fhir.mapping.fhir_reader import Element
from reko_fhir.mapping.sick_leave import sick_leave_to_fhir

Resource = dict[str, Any]

# EpisodeOfCare.status says what FHIR clients without our extension should understand;
# the REKO status itself travels in the reko-status extension and is what is read back.
EPISODE_STATUS = {
    RekoStatus.INGEN: "planned",  # no REKO status yet: nothing started
    RekoStatus.KONTAKTAD: "planned",
    RekoStatus.AKTIV: "active",
    RekoStatus.UPPFOLJNING: "active",
    RekoStatus.MEDICINSK_REHAB: "onhold",
    RekoStatus.AVSLUTAD: "finished",
    RekoStatus.AVBOJT: "cancelled",
    RekoStatus.LAMNAS_UTAN_ATGARD: "cancelled",
}


def identifier_of(case: CoordinationCase) -> list[dict[str, str]]:
    return [c.identifier(case.source.system, case.source.record_id)]


def episode_to_fhir(case: CoordinationCase, urls: CaseUrls) -> Resource:
    period: dict[str, str] = {"start": case.start.isoformat()}
    if case.end is not None:
        period["end"] = case.end.isoformat()
    coordinator = case.staff_member(case.coordinator)
    manager: dict[str, Any] = {
        "type": "Practitioner",
        "identifier": c.identifier(c.HSA, case.coordinator.value),
    }
    if coordinator.name:
        manager["display"] = coordinator.name
    out: Resource = {
        "resourceType": "EpisodeOfCare",
        "meta": c.profile("EpisodeOfCare"),
        "extension": [
            {"url": c.EXT_STATUS, "valueCoding": c.coding(c.CS_STATUS, case.status)},
            *(sick_leave_to_fhir(p) for p in case.sick_leave_periods),
        ],
        "identifier": identifier_of(case),
        "status": EPISODE_STATUS[case.status],
        "type": [c.kva(KvaCode.GC001)],
        "patient": c.reference(urls.patient),
        "managingOrganization": c.reference(urls.unit),
        "period": period,
        "careManager": manager,
    }
    if case.care_team is not None:
        out["team"] = [c.reference(urls.care_team)]
    return out


def coordinator_from_fhir(res: Element) -> HsaId:
    manager = res.need("careManager")
    ident = manager.need("identifier")
    if ident.data.get("system") not in c.HSA_SYSTEMS:
        raise ident.fail("system", "the coordinator is identified by HSA-id")
    return HsaId(ident.need_text("value"))


def status_from_fhir(res: Element) -> RekoStatus:
    ext = res.extension(c.EXT_STATUS)
    if ext is None:
        raise res.fail("extension", "the reko-status extension is required")
    return ext.need("valueCoding").enum("code", RekoStatus)


def care_team_to_fhir(case: CoordinationCase, team: CareTeam, urls: CaseUrls) -> Resource:
    participants = []
    for member in team.members:
        if member.staff is not None:
            role, target = c.concept(c.CS_ROLE, member.role), urls.staff(member.staff)
        else:
            assert member.actor is not None  # a TeamMember is staff or actor (domain invariant)
            role, target = c.concept(c.CS_ACTOR_TYPE, member.role), urls.actor(member.actor)
        participants.append({"role": [role], "member": c.reference(target)})
    return {
        "resourceType": "CareTeam",
        "meta": c.profile("CareTeam"),
        "identifier": identifier_of(case),
        "status": "inactive" if case.status.is_closed else "active",
        "subject": c.reference(urls.patient),
        "participant": participants,
        "managingOrganization": [c.reference(urls.unit)],
    }


def care_team_from_fhir(res: Element, index: BundleIndex) -> CareTeam:
    members = []
    for part in res.children("participant"):
        ref = part.child("member")
        url = ref.data.get("reference") if ref else None
        if url in index.staff:
            role = part.need_code_in("role", c.CS_ROLE, RekoRole)
            members.append(TeamMember(role, staff=index.staff_of(ref, part, "member")))
        else:
            kind = part.need_code_in("role", c.CS_ACTOR_TYPE, ActorType)
            members.append(TeamMember(kind, actor=index.actor_of(ref, part, "member")))
    return CareTeam(tuple(members))
