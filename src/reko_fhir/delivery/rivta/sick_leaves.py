"""Client of ListActiveSickLeavesForCareUnit 1.0 (clinicalprocess:healthcond:rehabilitation).

What Rehabstöd asks Intygstjänsten: the active sick-leave certificates of one care unit, each
with its work-capacity periods (``arbetsformaga/formaga{startdatum, slutdatum, nedsattning}``).
Contract: ``ListActiveSickLeavesForCareUnitResponder_1.0.xsd`` and its RIVTABP21 WSDL.

The answer carries each certificate's diagnosis (``diagnoskod``, ``bidiagnoser``); coordination
is documented without diagnosis, so those elements are never read: they do not reach the
records, the issues or the logs (``rivta/xsd/README.md``). Patient names and occupations are
not taken either; a coordinator needs the patient number, the unit, the issuer and the periods.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from lxml import etree

from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.rivta.oids import HSA_ROOT, patient_root
from reko_fhir.delivery.rivta.reading import (
    child,
    children,
    read_hsa,
    read_patient,
    read_period,
    text,
)
from reko_fhir.delivery.rivta.schemas import LIST_ACTIVE_NS
from reko_fhir.delivery.rivta.soap import RivtaClient
from reko_fhir.domain import HsaId, PatientId, SickLeavePeriod, mask_patient_ids
from reko_fhir.outcomes import Issue

NS = LIST_ACTIVE_NS
CORE_NS = "urn:riv:clinicalprocess:healthcond:rehabilitation:1"
TYPES_NS = "urn:riv:clinicalprocess:healthcond:certificate:types:2"
SOAP_ACTION = f"{NS}:ListActiveSickLeavesForCareUnit"
MAX_DAYS_SINCE_END = 14  # the request's own limit (max-dagar-sedan-avslut)

log = structlog.get_logger("reko_fhir.delivery.rivta")


@dataclass(frozen=True, slots=True)
class ActiveSickLeave:
    """One active sick-leave certificate (``intygsData``), without its diagnosis.

    ``care_unit`` is the unit of the issuing doctor (``skapadAv/enhet``); ``periods`` are the
    work-capacity periods whose degree is 25/50/75/100, in start order.
    """

    certificate_id: str
    patient: PatientId
    care_unit: HsaId
    issuer: HsaId
    periods: tuple[SickLeavePeriod, ...]


@dataclass(frozen=True, slots=True)
class ActiveSickLeaves:
    """The answer: the care provider, the certificates taken, and the issues on the others.

    ``result_code`` is ``OK`` or ``INFO``; ``message`` keeps the producer's ``comment``.
    """

    care_provider: HsaId | None
    records: tuple[ActiveSickLeave, ...]
    issues: tuple[Issue, ...]
    result_code: str
    message: str | None = None


def _ii(parent: etree._Element, name: str, root: str, extension: str) -> None:
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    etree.SubElement(element, f"{{{TYPES_NS}}}root").text = root
    etree.SubElement(element, f"{{{TYPES_NS}}}extension").text = extension


def build_request(
    care_unit: HsaId, *, patient: PatientId | None = None, max_days_since_end: int | None = None
) -> etree._Element:
    """The ``ListActiveSickLeavesForCareUnit`` request element."""
    if max_days_since_end is not None and not 0 <= max_days_since_end <= MAX_DAYS_SINCE_END:
        raise ValueError(f"max_days_since_end is 0-{MAX_DAYS_SINCE_END}")
    request = etree.Element(
        f"{{{NS}}}ListActiveSickLeavesForCareUnit", nsmap={"ns": NS, "t": TYPES_NS}
    )
    _ii(request, "enhets-id", HSA_ROOT, care_unit.value)
    if patient is not None:
        _ii(request, "person-id", patient_root(patient), patient.value)
    if max_days_since_end is not None:
        etree.SubElement(request, f"{{{NS}}}max-dagar-sedan-avslut").text = str(max_days_since_end)
    return request


def _read_certificate(
    element: etree._Element, where: str
) -> tuple[ActiveSickLeave | None, list[Issue]]:
    issues: list[Issue] = []
    patient_element = child(element, CORE_NS, "patient")
    patient, found = read_patient(
        None if patient_element is None else child(patient_element, CORE_NS, "personId"),
        TYPES_NS,
        f"{where}.patient.personId",
    )
    issues += found
    author = child(element, CORE_NS, "skapadAv")
    issuer, found = read_hsa(
        None if author is None else child(author, CORE_NS, "personalId"),
        TYPES_NS,
        f"{where}.skapadAv.personalId",
        "issuer",
    )
    issues += found
    unit = None if author is None else child(author, CORE_NS, "enhet")
    care_unit, found = read_hsa(
        None if unit is None else child(unit, CORE_NS, "enhetsId"),
        TYPES_NS,
        f"{where}.skapadAv.enhet.enhetsId",
        "care unit",
    )
    issues += found
    periods: list[SickLeavePeriod] = []
    capacity = child(element, CORE_NS, "arbetsformaga")
    for index, formaga in enumerate(
        [] if capacity is None else children(capacity, CORE_NS, "formaga")
    ):
        period, found = read_period(
            text(formaga, CORE_NS, "startdatum"),
            text(formaga, CORE_NS, "slutdatum"),
            text(formaga, CORE_NS, "nedsattning"),
            f"{where}.arbetsformaga.formaga[{index}]",
            "nedsattning",
        )
        issues += found
        if period is not None:
            periods.append(period)
    if patient is None or issuer is None or care_unit is None:
        return None, issues
    record = ActiveSickLeave(
        certificate_id=text(element, CORE_NS, "intygsId") or "",
        patient=patient,
        care_unit=care_unit,
        issuer=issuer,
        periods=tuple(sorted(periods, key=lambda p: p.start)),
    )
    return record, issues


def read_response(body: etree._Element) -> ActiveSickLeaves:
    """The records of a ``ListActiveSickLeavesForCareUnitResponse``; ERROR raises.

    A record whose patient, issuer or unit cannot be taken is left out with an error issue;
    a period with a degree outside 25/50/75/100 is left out of its record with an issue that
    points at the ``nedsattning``. Raises :class:`DeliveryError` (final) for ``resultCode``
    ERROR and for a body that is not this answer.
    """
    root_name = "ListActiveSickLeavesForCareUnitResponse"
    if body.tag != f"{{{NS}}}{root_name}":
        raise DeliveryError(f"expected {root_name}, got {body.tag}", retryable=False)
    code = text(body, NS, "resultCode") or ""
    comment = text(body, NS, "comment")
    if code not in ("OK", "INFO"):
        said = mask_patient_ids(comment or "no comment")[:500]
        raise DeliveryError(
            f"ListActiveSickLeavesForCareUnit: resultCode {code}: {said}", retryable=False
        )
    provider_element = child(body, NS, "vardgivare")
    provider, issues = read_hsa(
        None if provider_element is None else child(provider_element, CORE_NS, "vardgivarId"),
        TYPES_NS,
        f"{root_name}.vardgivare.vardgivarId",
        "care provider",
    )
    records: list[ActiveSickLeave] = []
    listing = child(body, NS, "intygsLista")
    for index, element in enumerate(
        [] if listing is None else children(listing, CORE_NS, "intygsData")
    ):
        record, found = _read_certificate(element, f"{root_name}.intygsLista.intygsData[{index}]")
        issues += found
        if record is not None:
            records.append(record)
    # Counts only: no patient numbers, no diagnosis, in the log.
    log.info("rivta.sick_leaves.read", contract=root_name, records=len(records), issues=len(issues))
    return ActiveSickLeaves(provider, tuple(records), tuple(issues), code, comment)


class ListActiveSickLeavesForCareUnitClient(RivtaClient):
    """``ListActiveSickLeavesForCareUnit`` 1.0 over SOAP 1.1 (RIVTA BP 2.1)."""

    soap_action = SOAP_ACTION
    what = "ListActiveSickLeavesForCareUnit"

    async def fetch(
        self,
        care_unit: HsaId,
        *,
        patient: PatientId | None = None,
        max_days_since_end: int | None = None,
    ) -> ActiveSickLeaves:
        """The active sick leaves of ``care_unit`` (optionally of one patient)."""
        request = build_request(care_unit, patient=patient, max_days_since_end=max_days_since_end)
        return read_response(await self._call(request))
