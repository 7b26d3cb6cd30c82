"""Author the reko FHIR package in ``profiles/``: differentials here, snapshots generated.

Run ``python scripts/build_profiles.py`` after changing a definition below; commit the JSON it
writes (that JSON is what other teams' validators load). The contract these follow is
``shared/spec/profiles.md``; own additions are documented in ``profiles/README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.snapshot import generate_snapshot

OUT = Path(__file__).resolve().parent.parent / "profiles"
BASE = "http://reko-fhir.se/fhir"
VERSION = "0.2.0"  # contract 2; see profiles/CHANGELOG.md
KVA = "urn:oid:1.2.752.116.1.3.2.1.4"
HSA = ("urn:oid:1.2.752.29.4.19", "urn:oid:1.2.752.129.2.1.4.1")
PNR = "http://electronichealth.se/identifier/personnummer"
SNR = "http://electronichealth.se/identifier/samordningsnummer"
Json = dict[str, Any]

CODE_SYSTEMS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "reko-coordination-part": (
        "Koordineringsinsatsernas delar (Lag 2019:1297)",
        [
            ("personligt-stod", "Personligt stöd"),
            ("intern-samordning", "Intern samordning"),
            ("extern-samverkan", "Samverkan med andra aktörer"),
        ],
    ),
    "reko-role": (
        "Roller i koordineringsinsatser",
        [
            ("rehabiliteringskoordinator", "Rehabiliteringskoordinator"),
            ("lakare", "Läkare"),
            ("sjukskoterska", "Sjuksköterska"),
            ("arbetsterapeut", "Arbetsterapeut"),
            ("fysioterapeut", "Fysioterapeut"),
            ("psykolog", "Psykolog"),
            ("kurator", "Kurator"),
            ("annan", "Annan"),
        ],
    ),
    "reko-actor-type": (
        "Externa aktörer",
        [
            ("forsakringskassan", "Försäkringskassan"),
            ("arbetsformedlingen", "Arbetsförmedlingen"),
            ("arbetsgivare", "Arbetsgivare"),
            ("kommun", "Kommun / socialtjänst"),
            ("foretagshalsovard", "Företagshälsovård"),
            ("annan", "Annan aktör"),
        ],
    ),
    "reko-status": (
        "REKO-status (Rehabstöd)",
        [
            ("ingen", "Ingen"),
            ("kontaktad", "Kontaktad"),
            ("aktiv", "Aktiv"),
            ("uppfoljning", "Uppföljning"),
            ("avslutad", "Avslutad"),
            ("avbojt", "Avböjt"),
            ("lamnas-utan-atgard", "Lämnas utan åtgärd"),
            ("medicinsk-rehab", "Medicinsk rehab"),
        ],
    ),
    "reko-consent-form": (
        "Samtyckets form",
        [("muntligt", "Muntligt"), ("skriftligt", "Skriftligt")],
    ),
    "reko-careplan-category": (
        "Vårdplanskategori",
        [
            ("atergang-i-arbete", "Plan för återgång i arbete"),
            ("intrade-i-arbetslivet", "Plan för inträde i arbetslivet"),
        ],
    ),
    "reko-policy": (
        "Regelverk",
        [("sfs-2019-1297", "Lag (2019:1297) om koordineringsinsatser för sjukskrivna patienter")],
    ),
    "reko-communication-category": (
        "Meddelandekategori",
        [("rehabiliteringsbehov", "Information om behov av rehabiliteringsåtgärder")],
    ),
    "reko-task": ("Arbetslistans uppgifter", [("tidig-identifiering", "Tidig identifiering")]),
    "reko-measure-group": (
        "Grupper i KVÅ-statistiken",
        [
            ("gc001", "Koordineringstillfällen (GC001)"),
            ("dv077", "Upprättade planer (DV077)"),
            ("aw026", "Uppföljningar av plan (AW026)"),
            ("patienter", "Patienter med minst ett tillfälle"),
            ("nya-insatser", "Påbörjade koordineringsärenden"),
            ("inom-90-dagar", "Varav första GC001 inom 90 dagar från sjukfallets start"),
            ("meddelanden-fk", "Meddelanden till Försäkringskassan"),
        ],
    ),
    "reko-exclusion": (
        "Skäl att inte erbjuda koordinering",
        [
            (
                "aktivitetsersattning-forlangd-skolgang",
                "Aktivitetsersättning vid förlängd skolgång",
            ),
            ("hel-sjukersattning", "Hel sjukersättning"),
            ("sysselsattning-ej-arbete", "Sysselsättning som inte är arbete"),
            ("annan", "Annat skäl"),
        ],
    ),
    # Own (not in the contract): the actions of the consent-history extension.
    "reko-consent-change": (
        "Ändringar av samtycke",
        [
            ("given", "Lämnat"),
            ("actors-changed", "Mottagare ändrade"),
            ("revoked", "Återkallat"),
        ],
    ),
    # Own: what a worklist Task's input carries (the contract fixes the content, not the codes).
    "reko-task-input": (
        "Uppgifter om sjukfallet i arbetslistan",
        [
            ("sjukfall-start", "Sjukfallets startdatum"),
            ("sjukskrivningsgrad", "Aktuell sjukskrivningsgrad (%)"),
            ("sjukfall-dagar", "Sjukfallets längd i dagar"),
        ],
    ),
}

# Contract 2: every reko-status concept carries Rehabstöd's id, REKO_1 (ingen) to REKO_8.
CONCEPT_PROPERTIES: dict[str, tuple[str, str, list[str]]] = {
    "reko-status": (
        "rehabstod-id",
        "Rehabstöd's id of the status (RekoStatusType)",
        [f"REKO_{n}" for n in range(1, 9)],
    ),
}


def cs_url(cs_id: str) -> str:
    return f"{BASE}/CodeSystem/{cs_id}"


def vs_url(vs_id: str) -> str:
    return f"{BASE}/ValueSet/{vs_id}"


def sd_url(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


def code_system(cs_id: str, title: str, codes: list[tuple[str, str]]) -> Json:
    concepts: list[Json] = [{"code": code, "display": display} for code, display in codes]
    out: Json = {
        "resourceType": "CodeSystem",
        "id": cs_id,
        "url": cs_url(cs_id),
        "version": VERSION,
        "name": "".join(p.capitalize() for p in cs_id.split("-")),
        "title": title,
        "status": "active",
        "caseSensitive": True,
        "content": "complete",
        "count": len(codes),
    }
    if cs_id in CONCEPT_PROPERTIES:
        prop, description, values = CONCEPT_PROPERTIES[cs_id]
        out["property"] = [{"code": prop, "description": description, "type": "string"}]
        for concept, value in zip(concepts, values, strict=True):
            concept["property"] = [{"code": prop, "valueString": value}]
    out["concept"] = concepts
    return out


def value_set(vs_id: str, title: str, include: list[Json]) -> Json:
    return {
        "resourceType": "ValueSet",
        "id": vs_id,
        "url": vs_url(vs_id),
        "version": VERSION,
        "name": "".join(p.capitalize() for p in vs_id.split("-")),
        "title": title,
        "status": "active",
        "compose": {"include": include},
    }


def el(element_id: str, **props: Any) -> Json:
    path = ".".join(part.split(":")[0] for part in element_id.split("."))
    out: Json = {"id": element_id, "path": path}
    if ":" in element_id.rsplit(".", maxsplit=1)[-1]:
        out["sliceName"] = element_id.rsplit(".", maxsplit=1)[-1].split(":")[1]
    out.update(props)
    return out


def invariant(key: str, human: str, expression: str, severity: str = "error") -> Json:
    return {
        "key": key,
        "severity": severity,
        "human": human,
        "expression": expression,
        "source": None,
    }


def coding(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def required(vs_id: str) -> Json:
    return {"strength": "required", "valueSet": vs_url(vs_id)}


def slicing(path: str, kind: str = "value") -> Json:
    return {"discriminator": [{"type": kind, "path": path}], "rules": "open"}


def ext_slice(parent: str, name: str, ext_id: str, lo: int = 0, hi: str = "1") -> list[Json]:
    # The fixed url makes the slice self-describing for validators that do not follow the
    # extension's profile to find its discriminator (Medplum among them).
    return [
        el(
            f"{parent}:{name}",
            min=lo,
            max=hi,
            type=[{"code": "Extension", "profile": [sd_url(ext_id)]}],
        ),
        el(f"{parent}:{name}.url", fixedUri=sd_url(ext_id)),
    ]


def structure(
    name: str,
    kind_type: str,
    description: str,
    elements: list[Json],
    *,
    base: str | None = None,
    context: list[str] | None = None,
) -> Json:
    is_extension = context is not None
    out: Json = {
        "resourceType": "StructureDefinition",
        "id": name,
        "url": sd_url(name),
        "version": VERSION,
        "name": name if not is_extension else "".join(p.capitalize() for p in name.split("-")),
        "status": "active",
        "fhirVersion": "4.0.1",
        "description": description,
        "kind": "complex-type" if is_extension else "resource",
        "abstract": False,
    }
    if is_extension:
        out["context"] = [{"type": "element", "expression": c} for c in context or []]
    out.update(
        {
            "type": kind_type,
            "baseDefinition": base or f"http://hl7.org/fhir/StructureDefinition/{kind_type}",
            "derivation": "constraint",
            "differential": {"element": [_clean(e) for e in elements]},
        }
    )
    return out


def _clean(element: Json) -> Json:
    if "constraint" in element:
        element["constraint"] = [
            {k: v for k, v in c.items() if v is not None} for c in element["constraint"]
        ]
    return element


def simple_extension(ext_id: str, context: list[str], description: str, value: Json) -> Json:
    return structure(
        ext_id,
        "Extension",
        description,
        [
            el("Extension", short=description),
            el("Extension.extension", max="0"),
            el("Extension.url", fixedUri=sd_url(ext_id)),
            el("Extension.value[x]", min=1, **value),
        ],
        base="http://hl7.org/fhir/StructureDefinition/Extension",
        context=context,
    )


def complex_extension(
    ext_id: str,
    context: list[str],
    description: str,
    parts: list[tuple[str, int, str, str, Json]],
    constraints: list[Json] | None = None,
) -> Json:
    elements = [
        el("Extension", short=description, **({"constraint": constraints} if constraints else {})),
        el("Extension.extension", slicing=slicing("url")),
    ]
    for name, lo, hi, value_type, extra in parts:
        elements += [
            el(f"Extension.extension:{name}", min=lo, max=hi),
            el(f"Extension.extension:{name}.extension", max="0"),
            el(f"Extension.extension:{name}.url", fixedUri=name),
            el(f"Extension.extension:{name}.value[x]", min=1, type=[{"code": value_type}], **extra),
        ]
    elements += [el("Extension.url", fixedUri=sd_url(ext_id)), el("Extension.value[x]", max="0")]
    return structure(
        ext_id,
        "Extension",
        description,
        elements,
        base="http://hl7.org/fhir/StructureDefinition/Extension",
        context=context,
    )


def coding_value(vs_id: str) -> Json:
    return {"type": [{"code": "Coding"}], "binding": required(vs_id)}


EXTENSIONS = [
    simple_extension(
        "consent-form",
        ["Consent"],
        "Hur samtycket lämnades (muntligt/skriftligt)",
        coding_value("reko-consent-form"),
    ),
    simple_extension(
        "reko-status",
        ["EpisodeOfCare"],
        "REKO-status enligt Rehabstöd",
        coding_value("reko-status"),
    ),
    simple_extension(
        "actor-type", ["Organization"], "Typ av extern aktör", coding_value("reko-actor-type")
    ),
    simple_extension(
        "external-actor",
        ["Procedure"],
        "Extern aktör som insatsen avser",
        {"type": [{"code": "Reference", "targetProfile": [sd_url("RekoOrganization")]}]},
    ),
    simple_extension(
        "coordination-part",
        ["CarePlan.activity.detail"],
        "Del av koordineringsinsatserna för en planerad aktivitet (egen)",
        coding_value("reko-coordination-part"),
    ),
    complex_extension(
        "sick-leave-period",
        ["EpisodeOfCare", "CarePlan.activity.detail"],
        "Sjukskrivningsperiod: start, slut och omfattning (25, 50, 75 eller 100 %)",
        [
            ("start", 1, "1", "date", {}),
            ("end", 0, "1", "date", {}),
            ("degree", 1, "1", "positiveInt", {}),
        ],
        [
            invariant(
                "reko-slp-1",
                "The degree is 25, 50, 75 or 100",
                "extension.where(url = 'degree').value.all($this = 25 or $this = 50 or $this = 75 or $this = 100)",
            ),
            invariant(
                "reko-slp-2",
                "A period does not end before it starts",
                "extension.where(url = 'end').exists() implies extension.where(url = 'end').value >= extension.where(url = 'start').value",
            ),
        ],
    ),
    complex_extension(
        "consent-history",
        ["Consent"],
        "En ändring i samtyckets historik (egen)",
        [
            ("date", 1, "1", "date", {}),
            ("action", 1, "1", "code", {"binding": required("reko-consent-change")}),
            ("note", 0, "1", "string", {}),
        ],
    ),
]

KVA_CODE = "code.coding.where(system = '" + KVA + "')"


def _codes_of(cs_id: str) -> str:
    """``code = 'a' or code = 'b' …`` over every code of a local code system."""
    return " or ".join(f"code = '{code}'" for code, _ in CODE_SYSTEMS[cs_id][1])


def no_diagnosis(element_id: str) -> Json:
    return el(element_id, max="0", short="Ingen diagnos: koordinering dokumenteras utan diagnos")


HSA_IDENT = " or ".join(f"system = '{s}'" for s in HSA)

PROFILES = [
    structure(
        "RekoPatient",
        "Patient",
        "Patient med personnummer eller samordningsnummer",
        [
            el(
                "Patient",
                constraint=[
                    invariant(
                        "reko-pat-1",
                        "At least one identifier is a personnummer or samordningsnummer",
                        f"identifier.where(system = '{PNR}' or system = '{SNR}').exists()",
                    )
                ],
            ),
            el("Patient.identifier", min=1),
        ],
    ),
    structure(
        "RekoOrganization",
        "Organization",
        "Vårdenhet (HSA-id) eller extern aktör (organisationsnummer + aktörstyp)",
        [
            el(
                "Organization",
                constraint=[
                    invariant(
                        "reko-org-1",
                        "A care unit has an HSA-id; an external actor an organisation number and actor-type",
                        f"identifier.where({HSA_IDENT}).exists() or (identifier.where(system = 'urn:oid:2.5.4.97').exists() "
                        f"and extension.where(url = '{sd_url('actor-type')}').exists())",
                    )
                ],
            ),
            el("Organization.extension", slicing=slicing("url")),
            *ext_slice("Organization.extension", "actorType", "actor-type"),
            el("Organization.identifier", min=1),
        ],
    ),
    structure(
        "RekoPractitionerRole",
        "PractitionerRole",
        "Personal i en roll i koordineringen",
        [
            el(
                "PractitionerRole",
                constraint=[
                    invariant(
                        "reko-pr-1",
                        "An HSA-id identifies the role holder",
                        f"identifier.where(({HSA_IDENT}) and value.matches('^SE(16)?[0-9]{{10}}-[A-Za-z0-9]{{1,31}}$')).exists()",
                    ),
                    invariant(
                        "reko-pr-2",
                        "A role from reko-role",
                        f"code.coding.where(system = '{cs_url('reko-role')}').exists()",
                    ),
                    invariant(
                        "reko-pr-3",
                        "Every reko-role coding is a code of reko-role",
                        f"code.coding.where(system = '{cs_url('reko-role')}').all({_codes_of('reko-role')})",
                    ),
                ],
            ),
            el("PractitionerRole.identifier", min=1),
            el("PractitionerRole.organization", min=1, max="1"),
            el("PractitionerRole.code", min=1, binding=required("reko-role")),
        ],
    ),
    structure(
        "RekoConsent",
        "Consent",
        "Samtycke till koordineringsinsatser och till att informera aktörer",
        [
            el(
                "Consent",
                constraint=[
                    invariant(
                        "reko-con-1",
                        "A revoked (inactive) consent has an end to its provision period",
                        "status = 'inactive' implies provision.period.end.exists()",
                    )
                ],
            ),
            el("Consent.extension", slicing=slicing("url")),
            *ext_slice("Consent.extension", "consentForm", "consent-form", 1, "1"),
            *ext_slice("Consent.extension", "history", "consent-history", 0, "*"),
            el(
                "Consent.scope",
                patternCodeableConcept=coding(
                    "http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"
                ),
            ),
            el("Consent.category", slicing=slicing("$this", "pattern")),
            el(
                "Consent.category:patientConsent",
                min=1,
                max="1",
                patternCodeableConcept=coding("http://loinc.org", "59284-0"),
            ),
            el("Consent.patient", min=1),
            el("Consent.dateTime", min=1),
            el("Consent.organization", min=1, max="1"),
            el(
                "Consent.policyRule",
                min=1,
                patternCodeableConcept=coding(cs_url("reko-policy"), "sfs-2019-1297"),
            ),
            el("Consent.provision", min=1),
            el("Consent.provision.type", min=1, fixedCode="permit"),
            el("Consent.provision.period", min=1),
            el("Consent.provision.period.start", min=1),
            el(
                "Consent.provision.actor.role",
                patternCodeableConcept=coding(
                    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"
                ),
            ),
            el(
                "Consent.provision.actor.reference",
                type=[
                    {
                        "code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Organization"],
                    }
                ],
            ),
        ],
    ),
    structure(
        "RekoEpisodeOfCare",
        "EpisodeOfCare",
        "Ärende för koordineringsinsatser",
        [
            el("EpisodeOfCare.extension", slicing=slicing("url")),
            *ext_slice("EpisodeOfCare.extension", "rekoStatus", "reko-status", 1, "1"),
            *ext_slice("EpisodeOfCare.extension", "sickLeavePeriod", "sick-leave-period", 0, "*"),
            el("EpisodeOfCare.type", min=1, slicing=slicing("$this", "pattern")),
            el(
                "EpisodeOfCare.type:gc001",
                min=1,
                max="1",
                patternCodeableConcept=coding(KVA, "GC001"),
            ),
            no_diagnosis("EpisodeOfCare.diagnosis"),
            el("EpisodeOfCare.managingOrganization", min=1),
            el("EpisodeOfCare.period", min=1),
            el("EpisodeOfCare.period.start", min=1),
        ],
    ),
    structure(
        "RekoCarePlan",
        "CarePlan",
        "Sjukskrivnings- och rehabiliteringsplan för återgång i eller inträde i arbetslivet",
        [
            el(
                "CarePlan",
                constraint=[
                    invariant(
                        "reko-cp-2",
                        "The category has a code of reko-careplan-category (atergang-i-arbete or intrade-i-arbetslivet)",
                        f"category.coding.where(system = '{cs_url('reko-careplan-category')}' and "
                        f"({_codes_of('reko-careplan-category')})).exists()",
                    ),
                    invariant(
                        "reko-cp-3",
                        "No contained Goal addresses a condition (no diagnosis)",
                        "contained.where(resourceType = 'Goal').addresses.empty()",
                    ),
                ],
            ),
            el("CarePlan.intent", fixedCode="plan"),
            el("CarePlan.category", min=1),
            el("CarePlan.subject", min=1),
            el("CarePlan.period", min=1),
            el("CarePlan.period.start", min=1),
            el("CarePlan.author", min=1),
            no_diagnosis("CarePlan.addresses"),
            el(
                "CarePlan.activity.detail",
                constraint=[
                    invariant(
                        "reko-cp-1",
                        "A detail with a sick-leave-period has the KVÅ code DV077",
                        f"extension.where(url = '{sd_url('sick-leave-period')}').exists() implies "
                        f"code.coding.where(system = '{KVA}' and code = 'DV077').exists()",
                    )
                ],
            ),
            el("CarePlan.activity.detail.extension", slicing=slicing("url")),
            *ext_slice(
                "CarePlan.activity.detail.extension", "sickLeavePeriod", "sick-leave-period"
            ),
            *ext_slice(
                "CarePlan.activity.detail.extension", "coordinationPart", "coordination-part"
            ),
            no_diagnosis("CarePlan.activity.detail.reasonCode"),
            no_diagnosis("CarePlan.activity.detail.reasonReference"),
        ],
    ),
    structure(
        "RekoProcedure",
        "Procedure",
        "Koordineringsinsats journalförd med KVÅ-kod",
        [
            el(
                "Procedure",
                constraint=[
                    invariant(
                        "reko-proc-1",
                        "The code has a KVÅ coding GC001, DV077 or AW026",
                        f"{KVA_CODE}.where(code = 'GC001' or code = 'DV077' or code = 'AW026').exists()",
                    ),
                    invariant(
                        "reko-proc-2",
                        "GC001 names the part of the coordination in category",
                        f"{KVA_CODE}.where(code = 'GC001').exists() implies category.coding.where(system = '{cs_url('reko-coordination-part')}').exists()",
                    ),
                    invariant(
                        "reko-proc-3",
                        "Collaboration with other actors (extern-samverkan) names an external actor",
                        f"category.coding.where(system = '{cs_url('reko-coordination-part')}' and code = 'extern-samverkan').exists() implies "
                        f"extension.where(url = '{sd_url('external-actor')}').exists()",
                    ),
                ],
            ),
            el("Procedure.extension", slicing=slicing("url")),
            *ext_slice("Procedure.extension", "externalActor", "external-actor", 0, "*"),
            el("Procedure.status", binding=required("reko-procedure-status")),
            el(
                "Procedure.category",
                binding={"strength": "extensible", "valueSet": vs_url("reko-coordination-part")},
            ),
            el("Procedure.code", min=1),
            el("Procedure.performed[x]", min=1),
            el("Procedure.performer", min=1),
            no_diagnosis("Procedure.reasonCode"),
            no_diagnosis("Procedure.reasonReference"),
            no_diagnosis("Procedure.complication"),
            no_diagnosis("Procedure.complicationDetail"),
        ],
    ),
    structure(
        "RekoCareTeam",
        "CareTeam",
        "Teamet kring patienten, oftast med rehabiliteringskoordinator",
        [
            el(
                "CareTeam",
                constraint=[
                    # Contract 2: a warning; doctors, nurses and others may coordinate too.
                    invariant(
                        "reko-ct-1",
                        "No participant is a rehabiliteringskoordinator (allowed, but check who coordinates)",
                        f"participant.role.coding.where(system = '{cs_url('reko-role')}' and code = 'rehabiliteringskoordinator').exists()",
                        severity="warning",
                    )
                ],
            ),
            el("CareTeam.subject", min=1),
            el(
                "CareTeam.participant",
                min=1,
                constraint=[
                    invariant(
                        "reko-ct-2",
                        "The role is from reko-role or reko-actor-type",
                        f"role.coding.where(system = '{cs_url('reko-role')}' or system = '{cs_url('reko-actor-type')}').exists()",
                    )
                ],
            ),
            el("CareTeam.participant.role", min=1),
            el("CareTeam.participant.member", min=1),
            el("CareTeam.managingOrganization", min=1),
        ],
    ),
    structure(
        "RekoCommunication",
        "Communication",
        "Information till Försäkringskassan om behov av rehabiliteringsåtgärder",
        [
            el("Communication.category", min=1, slicing=slicing("$this", "pattern")),
            el(
                "Communication.category:rehabiliteringsbehov",
                min=1,
                max="1",
                patternCodeableConcept=coding(
                    cs_url("reko-communication-category"), "rehabiliteringsbehov"
                ),
            ),
            el("Communication.subject", min=1),
            el(
                "Communication.recipient",
                min=1,
                type=[
                    {
                        "code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Organization"],
                    }
                ],
            ),
            el("Communication.sent", min=1),
        ],
    ),
]


TASK_INPUT = cs_url("reko-task-input")


def _has_input(code: str) -> str:
    return f"input.where(type.coding.where(system = '{TASK_INPUT}' and code = '{code}').exists()).exists()"


PROFILES.append(
    structure(
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


def value_sets() -> list[Json]:
    out = [
        value_set(cs_id, title, [{"system": cs_url(cs_id)}])
        for cs_id, (title, _) in CODE_SYSTEMS.items()
    ]
    out.append(
        value_set(
            "reko-procedure-status",
            "Procedure-status i koordinering",
            [
                {
                    "system": "http://hl7.org/fhir/event-status",
                    "concept": [
                        {"code": c}
                        for c in (
                            "preparation",
                            "in-progress",
                            "not-done",
                            "completed",
                            "entered-in-error",
                        )
                    ],
                }
            ],
        )
    )
    out.append(
        value_set(
            "reko-worklist-status",
            "Status för arbetslistans uppgifter",
            [
                {
                    "system": "http://hl7.org/fhir/task-status",
                    "concept": [
                        {"code": c}
                        for c in ("requested", "accepted", "rejected", "completed", "cancelled")
                    ],
                }
            ],
        )
    )
    out.append(
        value_set(
            "reko-kva",
            "KVÅ-koder för koordinering",
            [
                {
                    "system": KVA,
                    "concept": [{"code": c} for c in ("GC001", "DV077", "AW026")],
                }
            ],
        )
    )
    return out


def build() -> dict[str, Json]:
    """Every resource of the package by file name, snapshots included."""
    definitions = Definitions.core()
    resources = [code_system(i, t, c) for i, (t, c) in CODE_SYSTEMS.items()] + value_sets()
    definitions.add_all(resources)
    for sd in [*EXTENSIONS, *PROFILES]:
        sd["snapshot"] = {"element": generate_snapshot(sd, definitions)}
        definitions.add(sd)
        resources.append(sd)
    resources.append(measure())
    files = {f"{r['resourceType']}-{r['id']}.json": r for r in resources}
    files["package.json"] = {
        "name": "reko.fhir",
        "version": VERSION,
        "title": "reko-fhir: koordineringsinsatser",
        "description": "Profiles, extensions, code systems and value sets for coordination activities (Lag 2019:1297)",
        "fhirVersions": ["4.0.1"],
        "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        "canonical": BASE,
        "type": "fhir.ig",
        "license": "Apache-2.0",
    }
    return files


def main() -> None:
    for name, resource in build().items():
        (OUT / name).write_text(
            json.dumps(resource, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    print(f"wrote {len(build())} files to {OUT}")


if __name__ == "__main__":
    main()
