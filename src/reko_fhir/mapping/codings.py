"""Every system, profile and extension URL of the profile contract, and Coding builders.

The one place these strings are spelled; ``profiles/contract.md`` (contract 2) fixes them.
"""

from __future__ import annotations

from typing import Any

from reko_fhir.domain import KvaCode, PatientIdKind

BASE = "http://reko-fhir.se/fhir"

PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
PATIENT_ID_SYSTEMS = {
    PatientIdKind.PERSONNUMMER: PERSONNUMMER,
    PatientIdKind.SAMORDNINGSNUMMER: SAMORDNINGSNUMMER,
}
HSA = "urn:oid:1.2.752.29.4.19"
HSA_RIVTA = "urn:oid:1.2.752.129.2.1.4.1"  # the RIVTA root, accepted on input
HSA_SYSTEMS = frozenset({HSA, HSA_RIVTA})
ORG_NUMBER = "urn:oid:2.5.4.97"
KVA = "urn:oid:1.2.752.116.1.3.2.1.4"
LOINC = "http://loinc.org"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def code_system(cs_id: str) -> str:
    return f"{BASE}/CodeSystem/{cs_id}"


def structure(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


CS_PART = code_system("reko-coordination-part")
CS_ROLE = code_system("reko-role")
CS_ACTOR_TYPE = code_system("reko-actor-type")
CS_STATUS = code_system("reko-status")
CS_CONSENT_FORM = code_system("reko-consent-form")
CS_CAREPLAN_CATEGORY = code_system("reko-careplan-category")
CS_POLICY = code_system("reko-policy")
CS_COMMUNICATION_CATEGORY = code_system("reko-communication-category")
# Contract 2: the early-identification worklist and the KVÅ statistics.
CS_TASK = code_system("reko-task")
CS_EXCLUSION = code_system("reko-exclusion")
CS_MEASURE_GROUP = code_system("reko-measure-group")
CS_TASK_INPUT = code_system("reko-task-input")  # own, documented in profiles/README.md
PROFILE_WORKLIST_TASK = structure("RekoWorklistTask")
MEASURE_KVA_STATISTIK = f"{BASE}/Measure/kva-statistik"

EXT_CONSENT_FORM = structure("consent-form")
EXT_STATUS = structure("reko-status")
EXT_SICK_LEAVE = structure("sick-leave-period")
EXT_ACTOR_TYPE = structure("actor-type")
EXT_EXTERNAL_ACTOR = structure("external-actor")
# Own extensions, documented in profiles/README.md.
EXT_CONSENT_HISTORY = structure("consent-history")
EXT_COORDINATION_PART = structure("coordination-part")


def profile(resource_type: str) -> dict[str, list[str]]:
    """``meta`` naming the reko profile of ``resource_type`` (``RekoProcedure`` …)."""
    return {"profile": [structure(f"Reko{resource_type}")]}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display is not None:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def kva(code: KvaCode) -> dict[str, Any]:
    return concept(KVA, code.value, code.display)


def identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value}


def reference(full_url: str) -> dict[str, str]:
    return {"reference": full_url}
