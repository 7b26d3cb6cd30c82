"""The building blocks of the reko FHIR package: canonical URLs, the code systems, and helpers
that write differential elements, invariants, slices, extensions and value sets.

Used by ``build_profiles.py`` and ``profiles_worklist.py``; the contract they follow is
``profiles/contract.md``.
"""

from __future__ import annotations

from typing import Any

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


KVA_CODE = "code.coding.where(system = '" + KVA + "')"


def codes_of(cs_id: str) -> str:
    """``code = 'a' or code = 'b' …`` over every code of a local code system."""
    return " or ".join(f"code = '{code}'" for code, _ in CODE_SYSTEMS[cs_id][1])


def no_diagnosis(element_id: str, short: str = "Ingen diagnos") -> Json:
    return el(element_id, max="0", short=short)


HSA_IDENT = " or ".join(f"system = '{s}'" for s in HSA)


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
