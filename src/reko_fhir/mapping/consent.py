"""Consent: the patient's consent to coordination and to informing named actors.

https://hl7.org/fhir/R4/consent.html. Revocation is ``status = inactive`` with the revocation
date as ``provision.period.end``; the history of changes travels in the own ``consent-history``
extension (see ``profiles/README.md``).
"""

from __future__ import annotations

from typing import Any

from reko_fhir.domain import Consent, ConsentChange, ConsentChangeKind, ConsentForm, SourceRef
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.context import BundleIndex, CaseUrls
from reko_fhir.mapping.fhir_reader import Element

Resource = dict[str, Any]


def source_of(res: Element) -> SourceRef:
    """The business identifier the mapping put first: the journal system and record id."""
    ident = res.need("identifier")
    return SourceRef(ident.need_text("system"), ident.need_text("value"))


def _history_to_fhir(change: ConsentChange) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "date", "valueDate": change.on.isoformat()},
        {"url": "action", "valueCode": change.kind.value},
    ]
    if change.note:
        parts.append({"url": "note", "valueString": change.note})
    return {"url": c.EXT_CONSENT_HISTORY, "extension": parts}


def consent_to_fhir(consent: Consent, urls: CaseUrls) -> Resource:
    period = {"start": consent.valid_from.isoformat()}
    if consent.revoked_on is not None:
        period["end"] = consent.revoked_on.isoformat()
    provision: dict[str, Any] = {"type": "permit", "period": period}
    if consent.actors:
        provision["actor"] = [
            {
                "role": c.concept(c.PARTICIPATION_TYPE, "IRCP", "information recipient"),
                "reference": c.reference(urls.actor(org)),
            }
            for org in consent.actors
        ]
    return {
        "resourceType": "Consent",
        "meta": c.profile("Consent"),
        "extension": [
            {"url": c.EXT_CONSENT_FORM, "valueCoding": c.coding(c.CS_CONSENT_FORM, consent.form)},
            *(_history_to_fhir(change) for change in consent.history),
        ],
        "identifier": [c.identifier(consent.source.system, consent.source.record_id)],
        "status": "inactive" if consent.revoked_on is not None else "active",
        "scope": c.concept(c.CONSENT_SCOPE, "patient-privacy"),
        "category": [c.concept(c.LOINC, "59284-0", "Patient Consent")],
        "patient": c.reference(urls.patient),
        "dateTime": consent.recorded_at.isoformat(),
        "organization": [c.reference(urls.unit)],
        "policyRule": c.concept(c.CS_POLICY, "sfs-2019-1297"),
        "provision": provision,
    }


def consent_from_fhir(res: Element, index: BundleIndex) -> Consent:
    form = res.extension(c.EXT_CONSENT_FORM)
    if form is None:
        raise res.fail("extension", "the consent-form extension is required")
    provision = res.need("provision")
    history = []
    for ext in res.extensions(c.EXT_CONSENT_HISTORY):
        on, action, note = ext.extension("date"), ext.extension("action"), ext.extension("note")
        if on is None or action is None:
            raise ext.fail("extension", "consent-history needs 'date' and 'action'")
        history.append(
            ConsentChange(
                on.need_date("valueDate"),
                action.enum("valueCode", ConsentChangeKind),
                note.need_text("valueString") if note else None,
            )
        )
    return Consent(
        source_of(res),
        form.need("valueCoding").enum("code", ConsentForm),
        res.need_datetime("dateTime"),
        provision.need("period").need_date("start"),
        tuple(
            index.actor_of(a.child("reference"), a, "reference")
            for a in provision.children("actor")
        ),
        tuple(history),
    )
