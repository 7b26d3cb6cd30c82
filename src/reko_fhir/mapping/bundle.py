"""A whole coordination case as one FHIR transaction Bundle, and back.

Every entry is a conditional update on its business identifier, so applying the Bundle twice
changes nothing the second time (https://hl7.org/fhir/R4/http.html#trules). Reading a Bundle
back collects every problem with its FHIRPath before giving up (:class:`MappingError`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle

from reko_fhir.domain import (
    CoordinationCase,
    DomainError,
)
from reko_fhir.formats import FormatError, parse_json_object
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
from reko_fhir.mapping.fhir_reader import Element, FhirElementError, MappingError
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
from reko_fhir.outcomes import Issue, IssueCode, error

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
        entries.append(_entry(urls.record(kind, record), resource, record.system, record.record_id))
    return {
        "resourceType": "Bundle",
        "id": str(resource_uuid(src.system, "Bundle", src.record_id)),
        "type": "transaction",
        "entry": entries,
    }


def case_to_bundle(case: CoordinationCase) -> Bundle:
    """The case as a validated fhir.resources (R4B) transaction Bundle.

    A few values the domain accepts have no FHIR form (a control character in a text, a UTC
    offset with seconds); they raise :class:`MappingError` naming the element, not a pydantic
    traceback.
    """
    try:
        bundle = parse_json_object(case_to_bundle_json(case))
    except FormatError as exc:
        issue = error(IssueCode.VALUE, exc.message, exc.expression or "Bundle")
        raise MappingError([issue]) from None
    assert isinstance(bundle, Bundle)  # the mapping writes resourceType Bundle
    return bundle


class _Collector:
    """Runs readers over resources, turning each failure into an issue with its FHIRPath."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, code: IssueCode, message: str, expression: str) -> None:
        self.issues.append(error(code, message, expression))

    def one(self, res: Element, reader: Callable[[Element], T]) -> T | None:
        try:
            return reader(res)
        except FhirElementError as exc:
            self.add(IssueCode.INVALID, exc.message, exc.expression)
        except DomainError as exc:
            self.add(IssueCode.BUSINESS_RULE, f"{exc.field}: {exc.message}", res.path)
        return None

    def each(self, resources: list[Element], reader: Callable[[Element], T]) -> list[T]:
        return [x for r in resources if (x := self.one(r, reader)) is not None]


# The resource types a case Bundle is made of; anything else would be dropped unread.
_CASE_TYPES = frozenset(
    {
        "Organization",
        "Patient",
        "PractitionerRole",
        "EpisodeOfCare",
        "CareTeam",
        "Consent",
        "CarePlan",
        "Procedure",
        "Communication",
    }
)
# The element of each resource that names the patient; it must be the Bundle's one Patient,
# or a record about someone else would silently be filed under this patient.
_PATIENT_ELEMENT = {
    "EpisodeOfCare": "patient",
    "CareTeam": "subject",
    "Consent": "patient",
    "CarePlan": "subject",
    "Procedure": "subject",
    "Communication": "subject",
}
# Where a case-level DomainError points: the EpisodeOfCare carries the case itself.
_EPISODE_ELEMENT = {
    "start": "period.start",
    "end": "period.end",
    "status": "extension",
    "coordinator": "careManager",
    "sick_leave_periods": "extension",
}


def _index_entries(root: Element, out: _Collector) -> tuple[BundleIndex, dict[str, list[Element]]]:
    index = BundleIndex()
    by_type: dict[str, list[Element]] = {}
    for entry in root.children("entry"):
        res = entry.child("resource")
        if res is None:
            out.add(IssueCode.STRUCTURE, "a case Bundle entry needs a resource", entry.path)
            continue
        res.path = f"{entry.path}.resource"
        full_url = entry.text("fullUrl")
        if full_url and full_url in index.by_url:
            # bdl-7: otherwise a reference would silently resolve to only one of the two.
            out.add(IssueCode.STRUCTURE, f"fullUrl '{full_url}' occurs twice", entry.path)
        index.add(res, full_url)
        by_type.setdefault(str(res.data.get("resourceType")), []).append(res)
    return index, by_type


def _bundle_json(bundle: Bundle | Resource) -> Resource:
    """The Bundle as FHIR JSON; a dict is checked against the R4 model first, so the readers
    meet only well-formed elements (a list where a list belongs, a string in ``reference``)."""
    model: object = bundle
    if isinstance(bundle, dict):
        try:
            model = parse_json_object(bundle)
        except FormatError as exc:
            expression = exc.expression or "Bundle"
            raise MappingError([error(IssueCode.STRUCTURE, exc.message, expression)]) from None
    if not isinstance(model, Bundle):
        message = f"a case travels in a Bundle, not a {type(model).__name__}"
        raise MappingError([error(IssueCode.STRUCTURE, message, "resourceType")])
    data: Resource = json.loads(model.model_dump_json())
    return data


def _check_structure(by_type: dict[str, list[Element]], out: _Collector) -> None:
    for kind, resources in sorted(by_type.items()):
        if kind not in _CASE_TYPES:
            for res in resources:
                out.add(IssueCode.STRUCTURE, f"a case Bundle carries no {kind}", res.path)
    for kind in ("CareTeam", "CarePlan"):
        for res in by_type.get(kind, [])[1:]:
            out.add(IssueCode.STRUCTURE, f"a case has at most one {kind}", res.path)


def _check_patient_references(
    by_type: dict[str, list[Element]], patient: Element, index: BundleIndex, out: _Collector
) -> None:
    def check(res: Element, name: str) -> None:
        if index.target(res.child(name), res, name) is not patient:
            raise res.fail(name, "must reference the Patient of this Bundle")

    for kind, name in _PATIENT_ELEMENT.items():
        for res in by_type.get(kind, []):
            out.one(res, partial(check, name=name))


def bundle_to_case(bundle: Bundle | Resource) -> CoordinationCase:
    """Read a case Bundle (model or FHIR JSON dict) back into the domain.

    References resolve by ``fullUrl`` or ``Type/id`` inside the Bundle
    (https://hl7.org/fhir/R4/bundle.html#references). Raises :class:`MappingError` with every
    problem found, each located by its FHIRPath.
    """
    out = _Collector()
    index, by_type = _index_entries(Element(_bundle_json(bundle), "Bundle"), out)
    _check_structure(by_type, out)
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
        raise MappingError([*out.issues, error(IssueCode.STRUCTURE, message, "Bundle.entry")])
    (episode,), (patient_res,) = episodes, patients
    _check_patient_references(by_type, patient_res, index, out)
    patient = out.one(patient_res, patient_from_fhir)
    unit_res = out.one(
        episode, lambda e: index.target(e.child("managingOrganization"), e, "managingOrganization")
    )
    unit = out.one(unit_res, unit_from_fhir) if unit_res is not None else None
    for res in by_type.get("Organization", []):
        if res is not unit_res and not is_external_actor(res):
            message = "an Organization is the care unit or an external actor (actor-type)"
            out.add(IssueCode.STRUCTURE, message, res.path)
    head = out.one(episode, _episode_head)
    teams = out.each(by_type.get("CareTeam", []), lambda r: care_team_from_fhir(r, index))
    plans = out.each(by_type.get("CarePlan", []), lambda r: careplan_from_fhir(r, index))
    consents = out.each(by_type.get("Consent", []), lambda r: consent_from_fhir(r, index))
    activities = out.each(by_type.get("Procedure", []), lambda r: procedure_from_fhir(r, index))
    notices = out.each(by_type.get("Communication", []), lambda r: notice_from_fhir(r, index))
    if out.issues or patient is None or unit is None or head is None:
        raise MappingError(out.issues)
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
        top = exc.field.split(".")[0].split("[")[0]
        where = f"{episode.path}.{_EPISODE_ELEMENT[top]}" if top in _EPISODE_ELEMENT else "Bundle"
        message = f"{exc.field}: {exc.message}"
        raise MappingError([error(IssueCode.BUSINESS_RULE, message, where)]) from None


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
