"""Contract 2, rule 5: no diagnosis anywhere, in any element of any resource.

Coordination is documented without diagnosis (regional guideline, seed 001), so a Coding from a
diagnosis code system is an error wherever it stands: ``EpisodeOfCare.diagnosis``, an extra
``Procedure.code`` coding, ``complicationDetail``, a contained Goal's ``addresses``, an extension.
The check looks at Codings (https://hl7.org/fhir/R4/datatypes.html#Coding) and at Quantity codes,
contained resources included; it never echoes the code, so no diagnosis reaches a log.
"""

from __future__ import annotations

from typing import Any

from reko_fhir.outcomes import Issue, IssueCode, error
from reko_fhir.validation.case_rules import json_objects

Json = dict[str, Any]

DIAGNOSIS_SYSTEMS = frozenset(
    {
        "urn:oid:1.2.752.116.1.1.1.1.3",  # ICD-10-SE
        "http://hl7.org/fhir/sid/icd-10",
        "urn:oid:2.16.840.1.113883.6.3",  # ICD-10 (WHO)
    }
)


def is_diagnosis_system(system: object) -> bool:
    """One of the contract's diagnosis systems, or any whose URL names ``icd-10``/``icd10``."""
    if not isinstance(system, str):
        return False
    lowered = system.lower()
    return system in DIAGNOSIS_SYSTEMS or "icd-10" in lowered or "icd10" in lowered


def diagnosis_issues(
    resource: Json, where: str, coded: list[tuple[Json, str]] | None = None
) -> list[Issue]:
    """An error at every Coding (or coded Quantity) from a diagnosis code system.

    ``coded``: those objects, when found already (select_objects with diagnosis_coded)."""
    if coded is None:
        coded = json_objects(resource, where, keep=diagnosis_coded)  # contained ones too
    return [
        error(
            IssueCode.BUSINESS_RULE,
            f"a diagnosis code ({node['system']}) is not allowed here: coordination is "
            "documented without diagnosis (profile contract 2, rule 5)",
            path,
        )
        for node, path in coded
    ]


def diagnosis_coded(node: Json) -> bool:
    """A code beside a diagnosis system."""
    return "code" in node and is_diagnosis_system(node.get("system"))
