"""A whole coordination case as one FHIR transaction Bundle, and back.

Every entry is a conditional update on its business identifier, so applying the Bundle twice
changes nothing the second time (https://hl7.org/fhir/R4/http.html#trules). Reading a Bundle
back collects every problem with its FHIRPath before giving up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle

from reko_fhir.domain import (
    CoordinationCase,
    DomainError,
)
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.careplan import careplan_from_fhir, careplan_to_fhir
from reko_fhir.mapping.communication import notice_from_fhir, notice_to_fhir
from reko_fhir.mapping.consent import consent_from_fhir, consent_to_fhir, source_of
from reko_fhir.mapping.context import BundleIndex, CaseUrls
from reko_fhir.mapping.episode import (
    care_team_from_fhir,
    care_team_to_fhir,
    coordinator_from_fhir,
    episode_to_fhir,
    status_from_fhir,
)
from reko_fhir.mapping.fhir_ids import conditional_url, resource_uuid
from reko_fhir.mapping.fhir_reader import Element, FhirElementError
from reko_fhir.mapping.parties import (
    actor_from_fhir,
    actor_to_fhir,
    is_external_actor,
    patient_from_fhir,
    patient_to_fhir,
    staff_from_fhir,
    staff_to_fhir,
    unit_from_fhir,
    unit_to_fhir,
)
from reko_fhir.mapping.procedure import procedure_from_fhir, procedure_to_fhir
from reko_fhir.mapping.sick_leave import sick_leave_from_fhir
from reko_fhir.outcomes import Issue, IssueCode, OperationOutcomeError, error

Resource = dict[str, Any]
T = TypeVar("T")


def _entry(full_url: str, resource: Resource, system: str, value: str) -> Resource:
    kind = resource["resourceType"]
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "PUT", "url": conditional_url(kind, system, value)},
    }


def case_to_bundle_json(case: CoordinationCase) -> Resource:
    """The transaction Bundle as FHIR JSON (a dict); entries in a fixed order."""
    urls = CaseUrls(case)
    src = case.source
    entries = [_entry(urls.unit, unit_to_fhir(case.care_unit), c.HSA, case.care_unit.hsa_id.value)]
    entries += [
        _entry(urls.actor(a.org_number), actor_to_fhir(a), c.ORG_NUMBER, a.org_number.value)
        for a in case.actors
    ]
    pid = case.patient.id
    entries.append(
        _entry(
            urls.patient, patient_to_fhir(case.patient), c.PATIENT_ID_SYSTEMS[pid.kind], pid.value
        )
    )
    entries += [
        _entry(urls.staff(s.hsa_id), staff_to_fhir(s, urls), c.HSA, s.hsa_id.value)
        for s in case.staff
    ]
    entries.append(_entry(urls.episode, episode_to_fhir(case, urls), src.system, src.record_id))
    if case.care_team is not None:
        team = care_team_to_fhir(case, case.care_team, urls)
        entries.append(_entry(urls.care_team, team, src.system, src.record_id))
    for kind, record, resource in [
        *(("Consent", x.source, consent_to_fhir(x, urls)) for x in case.consents),
        *(
            ("CarePlan", p.source, careplan_to_fhir(case, p, urls))
            for p in ([case.plan] if case.plan else [])
        ),
        *(("Procedure", a.source, procedure_to_fhir(a, urls)) for a in case.activities),
        *(("Communication", n.source, notice_to_fhir(n, urls)) for n in case.notices),
    ]:
        url = f"urn:uuid:{resource_uuid(record.system, kind, record.record_id)}"
        entries.append(_entry(url, resource, record.system, record.record_id))
    return {
        "resourceType": "Bundle",
        "id": str(resource_uuid(src.system, "Bundle", src.record_id)),
        "type": "transaction",
        "entry": entries,
    }


def case_to_bundle(case: CoordinationCase) -> Bundle:
    """The case as a validated fhir.resources (R4B) transaction Bundle."""
    return Bundle.model_validate(case_to_bundle_json(case))


class _Collector:
    """Runs readers over resources, turning each failure into an issue with its FHIRPath."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def one(self, res: Element, reader: Callable[[Element], T]) -> T | None:
        try:
            return reader(res)
        except FhirElementError as exc:
            self.issues.append(error(IssueCode.INVALID, exc.message, exc.expression))
        except DomainError as exc:
            message = f"{exc.field}: {exc.message}"
            self.issues.append(error(IssueCode.BUSINESS_RULE, message, res.path))
        return None

    def each(self, resources: list[Element], reader: Callable[[Element], T]) -> list[T]:
        return [x for r in resources if (x := self.one(r, reader)) is not None]


def _index_entries(root: Element) -> tuple[BundleIndex, dict[str, list[Element]]]:
    index = BundleIndex()
    by_type: dict[str, list[Element]] = {}
    for entry in root.children("entry"):
        res = entry.child("resource")
        if res is None:
            continue
        res.path = f"{entry.path}.resource"
        index.add(res, entry.text("fullUrl"))
        by_type.setdefault(str(res.data.get("resourceType")), []).append(res)
    return index, by_type


def bundle_to_case(bundle: Bundle | Resource) -> CoordinationCase:
    """Read a case Bundle back into the domain; raise OperationOutcomeError with every problem."""
    data = json.loads(bundle.model_dump_json()) if isinstance(bundle, Bundle) else bundle
    index, by_type = _index_entries(Element(data, "Bundle"))
    out = _Collector()
    # People and actors first: the other resources refer to them.
    staff, actors = [], []
    for res in by_type.get("PractitionerRole", []):
        if (member := out.one(res, staff_from_fhir)) is not None:
            staff.append(member)
            index.register_staff(res, member.hsa_id)
    for res in by_type.get("Organization", []):
        if is_external_actor(res) and (actor := out.one(res, actor_from_fhir)) is not None:
            actors.append(actor)
            index.register_actor(res, actor.org_number)
    episodes, patients = by_type.get("EpisodeOfCare", []), by_type.get("Patient", [])
    if len(episodes) != 1 or len(patients) != 1:
        message = "a case Bundle holds exactly one Patient and one EpisodeOfCare"
        raise OperationOutcomeError([error(IssueCode.STRUCTURE, message, "Bundle.entry")])
    (episode,) = episodes
    patient = out.one(patients[0], patient_from_fhir)
    unit = out.one(
        episode,
        lambda e: unit_from_fhir(
            index.target(e.child("managingOrganization"), e, "managingOrganization")
        ),
    )
    head = out.one(episode, _episode_head)
    teams = out.each(by_type.get("CareTeam", []), lambda r: care_team_from_fhir(r, index))
    plans = out.each(by_type.get("CarePlan", []), lambda r: careplan_from_fhir(r, index))
    consents = out.each(by_type.get("Consent", []), lambda r: consent_from_fhir(r, index))
    activities = out.each(by_type.get("Procedure", []), lambda r: procedure_from_fhir(r, index))
    notices = out.each(by_type.get("Communication", []), lambda r: notice_from_fhir(r, index))
    if out.issues or patient is None or unit is None or head is None:
        raise OperationOutcomeError(out.issues)
    try:
        return CoordinationCase(
            patient=patient,
            care_unit=unit,
            staff=tuple(staff),
            actors=tuple(actors),
            consents=tuple(consents),
            care_team=teams[0] if teams else None,
            plan=plans[0] if plans else None,
            activities=tuple(activities),
            notices=tuple(notices),
            **head,
        )
    except DomainError as exc:
        message = f"{exc.field}: {exc.message}"
        raise OperationOutcomeError([error(IssueCode.BUSINESS_RULE, message, "Bundle")]) from None


def _episode_head(episode: Element) -> dict[str, Any]:
    period = episode.need("period")
    return {
        "source": source_of(episode),
        "status": status_from_fhir(episode),
        "start": period.need_date("start"),
        "end": period.date("end"),
        "coordinator": coordinator_from_fhir(episode),
        "sick_leave_periods": tuple(
            sick_leave_from_fhir(e) for e in episode.extensions(c.EXT_SICK_LEAVE)
        ),
    }
