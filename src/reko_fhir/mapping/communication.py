"""The notice to Försäkringskassan of a need of rehabilitation, as Communication.

https://hl7.org/fhir/R4/communication.html
"""

from __future__ import annotations

from typing import Any

from reko_fhir.domain import NoticeToForsakringskassan
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.consent import source_of
from reko_fhir.mapping.context import BundleIndex, CaseUrls
from reko_fhir.mapping.fhir_reader import Element

Resource = dict[str, Any]


def notice_to_fhir(notice: NoticeToForsakringskassan, urls: CaseUrls) -> Resource:
    out: Resource = {
        "resourceType": "Communication",
        "meta": c.profile("Communication"),
        "identifier": [c.identifier(notice.source.system, notice.source.record_id)],
        "status": "completed",
        "category": [c.concept(c.CS_COMMUNICATION_CATEGORY, "rehabiliteringsbehov")],
        "subject": c.reference(urls.patient),
        "sent": notice.sent.isoformat(),
        "recipient": [c.reference(urls.actor(notice.recipient))],
        "sender": c.reference(urls.staff(notice.sender)),
    }
    if notice.text:
        out["payload"] = [{"contentString": notice.text}]
    return out


def notice_from_fhir(res: Element, index: BundleIndex) -> NoticeToForsakringskassan:
    payload = res.child("payload")
    return NoticeToForsakringskassan(
        source_of(res),
        res.need_datetime("sent"),
        index.staff_of(res.child("sender"), res, "sender"),
        index.actor_of(res.child("recipient"), res, "recipient[0]"),
        payload.need_text("contentString") if payload else None,
    )
