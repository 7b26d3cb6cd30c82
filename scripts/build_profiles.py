"""Author the reko FHIR package in ``profiles/``: differentials here, snapshots generated.

Run ``python scripts/build_profiles.py`` after changing a definition below; commit the JSON it
writes (that JSON is what other teams' validators load). The contract these follow is
``profiles/contract.md``; own additions are documented in ``profiles/README.md``. The building
blocks are in ``profile_parts.py``, the worklist Task and the statistics Measure (contract 2) in
``profiles_worklist.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.snapshot import generate_snapshot

# The parts live next to this script; it runs as a script and is loaded by path in the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from profile_parts import (
    BASE,
    CODE_SYSTEMS,
    HSA_IDENT,
    KVA,
    KVA_CODE,
    PNR,
    SNR,
    VERSION,
    Json,
    code_system,
    codes_of,
    coding,
    coding_value,
    complex_extension,
    cs_url,
    el,
    ext_slice,
    invariant,
    no_diagnosis,
    required,
    sd_url,
    simple_extension,
    slicing,
    structure,
    value_sets,
    vs_url,
)
from profiles_worklist import WORKLIST_TASK, measure

OUT = Path(__file__).resolve().parent.parent / "profiles"

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
                        f"code.coding.where(system = '{cs_url('reko-role')}').all({codes_of('reko-role')})",
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
                        f"({codes_of('reko-careplan-category')})).exists()",
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
            no_diagnosis(
                "CarePlan.addresses", "Ingen diagnos: koordinering dokumenteras utan diagnos"
            ),
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


PROFILES.append(WORKLIST_TASK)


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
