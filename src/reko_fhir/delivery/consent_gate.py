"""The consent gate: nothing reaches an external actor unless a consent covers it *now*.

A message is enqueued when the write is accepted, but the patient may revoke consent before
it is sent; the check therefore runs again at send time, against the store as it is then
(the contract's consent rule, ``profiles/contract.md``; FHIR Consent:
https://hl7.org/fhir/R4/consent.html). Disclosures are: anything sent to a target marked
external (to the organisation it names), and a Communication's recipients (a notice to
Försäkringskassan), whichever target carries it.
"""

from __future__ import annotations

from datetime import date

from reko_fhir.store import Search
from reko_fhir.store.outbox import Message
from reko_fhir.validation.case_rules import covers
from reko_fhir.validation.store_rules import Reader, patient_context


def disclosed_to(message: Message, external_recipient: str | None) -> list[str]:
    """The organisations (``Organization/…``) the message would disclose information to."""
    recipients = [external_recipient] if external_recipient else []
    payload = message.payload or {}
    if message.resource_type == "Communication":
        recipients += [
            ref
            for r in payload.get("recipient", [])
            if isinstance(ref := (r or {}).get("reference"), str)
            and ref.startswith("Organization/")
        ]
    return sorted(set(recipients))


async def consent_block_reason(
    reader: Reader, message: Message, external_recipient: str | None, today: date
) -> str | None:
    """Why the message may not be sent today, or None when every disclosure is covered."""
    if message.operation == "delete":
        return None  # a retraction discloses nothing new
    if external_recipient and not external_recipient.startswith("Organization/"):
        found = await reader.search(
            "Organization", Search((("identifier", external_recipient),), 2)
        )
        if len(found) != 1:
            return f"the target's recipient {external_recipient} is not one known organisation"
        external_recipient = f"Organization/{found[0].id}"
    recipients = disclosed_to(message, external_recipient)
    if not recipients:
        return None
    patient = message.ordering_key
    if not patient.startswith("Patient/"):
        return f"{message.resource_type} names no patient whose consent could cover disclosure"
    resolver = await patient_context(reader, patient, set(recipients))
    consents = resolver.consents_for(patient)
    for ref in recipients:
        if not any(covers(consent, today, ref, resolver) for consent in consents):
            name = (resolver.resolve(ref) or {}).get("name", ref)
            return f"no consent of the patient covers disclosure to {name} on {today.isoformat()}"
    return None
