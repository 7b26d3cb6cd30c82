"""Patient, Organization (care unit, external actor) and PractitionerRole, both ways.

https://hl7.org/fhir/R4/patient.html, https://hl7.org/fhir/R4/organization.html,
https://hl7.org/fhir/R4/practitionerrole.html
"""

from __future__ import annotations

from typing import Any

from reko_fhir.domain import (
    ActorType,
    CareUnit,
    ExternalActor,
    HsaId,
    OrganisationNumber,
    Patient,
    PatientId,
    RekoRole,
    StaffRole,
)
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.context import CaseUrls
from reko_fhir.mapping.fhir_reader import Element

Resource = dict[str, Any]


def patient_to_fhir(patient: Patient) -> Resource:
    out: Resource = {
        "resourceType": "Patient",
        "meta": c.profile("Patient"),
        "identifier": [c.identifier(c.PATIENT_ID_SYSTEMS[patient.id.kind], patient.id.value)],
    }
    name: dict[str, Any] = {}
    if patient.family:
        name["family"] = patient.family
    if patient.given:
        name["given"] = [patient.given]
    if name:
        out["name"] = [name]
    return out


def patient_from_fhir(res: Element) -> Patient:
    value = res.identifier_value(set(c.PATIENT_ID_SYSTEMS.values()))
    if value is None:
        raise res.fail("identifier", "needs a personnummer or samordningsnummer")
    name = res.child("name")
    given = name.data.get("given") if name else None
    # The domain keeps given names as one string; several FHIR given names are joined rather
    # than all but the first dropped.
    given_text = " ".join(str(g) for g in given) if isinstance(given, list) and given else None
    return Patient(PatientId(value), name.text("family") if name else None, given_text)


def unit_to_fhir(unit: CareUnit) -> Resource:
    return {
        "resourceType": "Organization",
        "meta": c.profile("Organization"),
        "identifier": [c.identifier(c.HSA, unit.hsa_id.value)],
        "name": unit.name,
    }


def actor_to_fhir(actor: ExternalActor) -> Resource:
    return {
        "resourceType": "Organization",
        "meta": c.profile("Organization"),
        "extension": [
            {"url": c.EXT_ACTOR_TYPE, "valueCoding": c.coding(c.CS_ACTOR_TYPE, actor.actor_type)}
        ],
        "identifier": [c.identifier(c.ORG_NUMBER, actor.org_number.value)],
        "name": actor.name,
    }


def is_external_actor(res: Element) -> bool:
    return res.extension(c.EXT_ACTOR_TYPE) is not None


def unit_from_fhir(res: Element) -> CareUnit:
    hsa = res.identifier_value(c.HSA_SYSTEMS)
    if hsa is None:
        raise res.fail("identifier", "a care unit needs an HSA-id")
    return CareUnit(HsaId(hsa), res.need_text("name"))


def actor_from_fhir(res: Element) -> ExternalActor:
    ext = res.extension(c.EXT_ACTOR_TYPE)
    if ext is None:
        raise res.fail("extension", "an external actor carries the actor-type extension")
    coding = ext.need("valueCoding")
    org = res.identifier_value({c.ORG_NUMBER})
    if org is None:
        raise res.fail("identifier", f"an external actor needs a {c.ORG_NUMBER} identifier")
    return ExternalActor(
        OrganisationNumber(org), coding.enum("code", ActorType), res.need_text("name")
    )


def staff_to_fhir(staff: StaffRole, urls: CaseUrls) -> Resource:
    code: dict[str, Any] = c.concept(c.CS_ROLE, staff.role)
    if staff.title:
        code["text"] = staff.title
    practitioner: dict[str, Any] = {
        "type": "Practitioner",
        "identifier": c.identifier(c.HSA, staff.hsa_id.value),
    }
    if staff.name:
        practitioner["display"] = staff.name
    return {
        "resourceType": "PractitionerRole",
        "meta": c.profile("PractitionerRole"),
        "identifier": [c.identifier(c.HSA, staff.hsa_id.value)],
        "practitioner": practitioner,
        "organization": c.reference(urls.unit),
        "code": [code],
    }


def staff_from_fhir(res: Element) -> StaffRole:
    hsa = res.identifier_value(c.HSA_SYSTEMS)
    if hsa is None:
        raise res.fail("identifier", "a PractitionerRole needs an HSA-id")
    role = res.need_code_in("code", c.CS_ROLE, RekoRole)
    code = res.need("code")
    practitioner = res.child("practitioner")
    return StaffRole(
        HsaId(hsa),
        role,
        practitioner.text("display") if practitioner else None,
        code.text("text"),
    )
