"""A coordination occasion as Procedure with its KVÅ code; never with a diagnosis.

https://hl7.org/fhir/R4/procedure.html. No ``reasonCode``/``reasonReference``: coordination is
documented without diagnosis.
"""

from __future__ import annotations

from typing import Any

from reko_fhir.domain import ActivityStatus, CoordinationActivity, CoordinationPart, KvaCode
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.careplan import carries_out
from reko_fhir.mapping.consent import source_of
from reko_fhir.mapping.context import BundleIndex, CaseUrls
from reko_fhir.mapping.fhir_reader import Element

Resource = dict[str, Any]


def procedure_to_fhir(activity: CoordinationActivity, urls: CaseUrls) -> Resource:
    out: Resource = {"resourceType": "Procedure", "meta": c.profile("Procedure")}
    if activity.external_actors:
        out["extension"] = [
            {"url": c.EXT_EXTERNAL_ACTOR, "valueReference": c.reference(urls.actor(org))}
            for org in activity.external_actors
        ]
    out["identifier"] = [c.identifier(activity.source.system, activity.source.record_id)]
    plan = urls.case.plan
    if plan is not None and carries_out(urls.case, activity):
        out["basedOn"] = [c.reference(urls.record("CarePlan", plan.source))]
    out["status"] = activity.status.value
    if activity.part is not None:
        out["category"] = c.concept(c.CS_PART, activity.part)
    out["code"] = c.kva(activity.kva)
    out["subject"] = c.reference(urls.patient)
    out["performedDateTime"] = activity.performed.isoformat()
    out["performer"] = [
        {"actor": c.reference(urls.staff(activity.performer)), "onBehalfOf": c.reference(urls.unit)}
    ]
    if activity.note:
        out["note"] = [{"text": activity.note}]
    return out


def procedure_from_fhir(res: Element, index: BundleIndex) -> CoordinationActivity:
    category = res.coding_in("category", c.CS_PART)
    note = res.child("note")
    performer = res.need("performer")
    return CoordinationActivity(
        source=source_of(res),
        kva=res.need_code_in("code", c.KVA, KvaCode),
        performed=res.need_datetime("performedDateTime"),
        performer=index.staff_of(performer.child("actor"), performer, "actor"),
        part=category.enum("code", CoordinationPart) if category else None,
        external_actors=tuple(
            index.actor_of(ext.child("valueReference"), ext, "valueReference")
            for ext in res.extensions(c.EXT_EXTERNAL_ACTOR)
        ),
        note=note.need_text("text") if note else None,
        status=res.enum("status", ActivityStatus),
    )
