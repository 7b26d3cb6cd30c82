"""A performed Procedure completes the planned activity it carries out, in the same unit of work
as the Procedure's write (https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.basedOn).

The plan a Procedure is ``basedOn`` is one of the writer's own care unit, about the same patient:
another unit's CarePlan answers as one that never was (422 at ``basedOn[i]``), so a unit can
neither learn of nor change another's plans. The activity it carries out
(:func:`reko_fhir.mapping.followups.carried_out`) gets ``outcomeReference`` and status
``completed``: a new version of the CarePlan, written through the caller's session like any
write (its Provenance and access-log record). A Procedure sent again finds its link in place
and writes nothing.
"""

from __future__ import annotations

from typing import Any

from reko_fhir.mapping.followups import carried_out
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import FhirSession

Json = dict[str, Any]


def _plans(procedure: Json) -> list[tuple[int, str]]:
    """(position, CarePlan id) of each ``basedOn`` naming a CarePlan."""
    found = []
    for i, based in enumerate(procedure.get("basedOn") or []):
        ref = based.get("reference") if isinstance(based, dict) else None
        if isinstance(ref, str) and ref.startswith("CarePlan/") and ref.count("/") == 1:
            found.append((i, ref.split("/", 1)[1]))
    return found


def _reference(node: Any) -> Any:
    return node.get("reference") if isinstance(node, dict) else None


def _refuse(message: str, expression: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.BUSINESS_RULE, message, expression)], status=422)


async def link_performed(unit: FhirSession, procedure: Json, where: str = "Procedure") -> None:
    """Complete the activity of each plan ``procedure`` (as stored, with its id) is based on;
    ``where`` is the Procedure's FHIRPath in the request (``Bundle.entry[3].resource``)."""
    if procedure.get("resourceType") != "Procedure":
        return
    for i, plan_id in _plans(procedure):
        expression = f"{where}.basedOn[{i}]"
        found = await unit.read_current("CarePlan", [plan_id])
        if not found or found[0].partition != unit.partitions.own:
            raise _refuse(f"CarePlan/{plan_id} is not known in this care unit", expression)
        plan = found[0].resource
        subject = _reference(procedure.get("subject"))
        if _reference(plan.get("subject")) != subject:
            message = f"CarePlan/{plan_id} is another patient's plan than {subject}'s"
            raise _refuse(message, expression)
        linked = carried_out(plan, procedure, f"Procedure/{procedure['id']}")
        if linked is not None:
            await unit.update(linked)


def link_in_bundle(resources: dict[int, Json]) -> None:
    """In a transaction Bundle holding both a plan and Procedures based on it (ids assigned,
    references rewritten), the plan is written already linked: one version, and the same
    Bundle sent again finds it unchanged."""
    plans = {
        r.get("id"): index for index, r in resources.items() if r.get("resourceType") == "CarePlan"
    }
    for resource in resources.values():
        if resource.get("resourceType") != "Procedure":
            continue
        for _, plan_id in _plans(resource):
            if plan_id in plans:
                linked = carried_out(
                    resources[plans[plan_id]], resource, f"Procedure/{resource['id']}"
                )
                if linked is not None:
                    resources[plans[plan_id]] = linked
