"""Contract 2's worklist and statistics in the reko package: the ``RekoWorklistTask`` profile
(early identification, one Task per patient and sick leave at a care unit) and the
``kva-statistik`` Measure. Fixed by the last section of ``profiles/contract.md``.
"""

from __future__ import annotations

from profile_parts import (
    BASE,
    CODE_SYSTEMS,
    KVA,
    VERSION,
    Json,
    coding,
    cs_url,
    el,
    invariant,
    required,
    structure,
    vs_url,
)

TASK_INPUT = cs_url("reko-task-input")


def _has_input(code: str) -> str:
    return f"input.where(type.coding.where(system = '{TASK_INPUT}' and code = '{code}').exists()).exists()"


WORKLIST_TASK = structure(
    "RekoWorklistTask",
    "Task",
    "Arbetslistan för tidig identifiering: en patient och ett sjukfall vid en vårdenhet",
    [
        el(
            "Task",
            constraint=[
                invariant(
                    "reko-task-1",
                    "A rejected candidate gives a reason (a reko-exclusion coding, or that the patient declined)",
                    "status = 'rejected' implies statusReason.exists()",
                ),
                invariant(
                    "reko-task-2",
                    "The input carries the sick leave's start, current degree and length in days",
                    " and ".join(
                        _has_input(code) for code, _ in CODE_SYSTEMS["reko-task-input"][1]
                    ),
                ),
            ],
        ),
        el("Task.status", binding=required("reko-worklist-status")),
        el(
            "Task.statusReason",
            binding={"strength": "extensible", "valueSet": vs_url("reko-exclusion")},
        ),
        el(
            "Task.code",
            min=1,
            patternCodeableConcept=coding(cs_url("reko-task"), "tidig-identifiering"),
        ),
        el(
            "Task.for",
            min=1,
            type=[
                {
                    "code": "Reference",
                    "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
                }
            ],
        ),
        el(
            "Task.owner",
            min=1,
            type=[
                {
                    "code": "Reference",
                    "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Organization"],
                }
            ],
        ),
        el("Task.input", min=3),
    ],
)

# The KVÅ statistics: each group counts what a search of the same period finds; the criteria
# are those searches (application/x-fhir-query), with the period and unit filled in by
# $evaluate-measure (https://hl7.org/fhir/R4/measure-operation-evaluate-measure.html).
_MEASURE_GROUPS = {
    "gc001": f"Procedure?code={KVA}|GC001&status=completed",
    "dv077": f"Procedure?code={KVA}|DV077&status=completed",
    "aw026": f"Procedure?code={KVA}|AW026&status=completed",
    "patienter": f"Procedure?code={KVA}|GC001&status=completed (distinct subject)",
    "nya-insatser": f"EpisodeOfCare?type={KVA}|GC001 (period.start in the period)",
    "inom-90-dagar": f"EpisodeOfCare?type={KVA}|GC001 (first GC001 within 90 days of the sick leave's start)",
    "meddelanden-fk": f"Communication?category={cs_url('reko-communication-category')}|rehabiliteringsbehov",
}


def measure() -> Json:
    groups: list[Json] = []
    for code, query in _MEASURE_GROUPS.items():
        group: Json = {
            "code": coding(cs_url("reko-measure-group"), code),
            "population": [
                {
                    "code": coding(
                        "http://terminology.hl7.org/CodeSystem/measure-population",
                        "measure-population",
                    ),
                    "criteria": {"language": "application/x-fhir-query", "expression": query},
                }
            ],
        }
        if code == "gc001":
            group["stratifier"] = [
                {
                    "code": {"text": "reko-coordination-part"},
                    "criteria": {
                        "language": "text/fhirpath",
                        "expression": f"Procedure.category.coding.where(system = '{cs_url('reko-coordination-part')}').code",
                    },
                }
            ]
        groups.append(group)
    return {
        "resourceType": "Measure",
        "id": "kva-statistik",
        "url": f"{BASE}/Measure/kva-statistik",
        "version": VERSION,
        "name": "KvaStatistik",
        "title": "KVÅ-statistik för koordineringsinsatser per vårdenhet",
        "status": "active",
        "subjectCodeableConcept": coding("http://hl7.org/fhir/resource-types", "Organization"),
        "scoring": coding("http://terminology.hl7.org/CodeSystem/measure-scoring", "cohort"),
        "group": groups,
    }
