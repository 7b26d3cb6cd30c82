"""Client of ListSickLeavesForCare 1.0 (clinicalprocess:healthcond:certificate).

The national contract for the sick-leave cases (``sjukfall``) of a care unit: each case has a
start and end date, its length, the number of certificates, its current degree (``aktivGrad``)
and the degrees it has had (``grader``). Contract: ``ListSickLeavesForCareResponder_1.0.xsd``.
The answer has no ``resultCode``: producers report errors as SOAP Faults.

Each case carries a diagnosis (``diagnoskod``); it is never read (``rivta/xsd/README.md``).
The contract gives the degrees of a case without their dates, so ``periods`` holds one period
(start to end) only when the case had a single degree throughout; otherwise it is empty and
``degrees`` keeps what is known — a period is never invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import structlog
from lxml import etree

from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.rivta.oids import HSA_ROOT
from reko_fhir.delivery.rivta.reading import (
    child,
    children,
    quoted,
    read_date,
    read_degree,
    read_hsa,
    read_patient,
    text,
)
from reko_fhir.delivery.rivta.schemas import LIST_FOR_CARE_NS
from reko_fhir.delivery.rivta.soap import RivtaClient
from reko_fhir.domain import DomainError, HsaId, PatientId, SickLeavePeriod
from reko_fhir.outcomes import Issue, IssueCode, error

NS = LIST_FOR_CARE_NS
TYPES_NS = "urn:riv:clinicalprocess:healthcond:certificate:types:3"
SOAP_ACTION = f"{NS}:ListSickLeavesForCare"
ROOT_NAME = "ListSickLeavesForCareResponse"

log = structlog.get_logger("reko_fhir.delivery.rivta")


@dataclass(frozen=True, slots=True)
class SickLeaveCase:
    """One sick-leave case (``sjukfall``) without its diagnosis.

    ``issuer`` is the doctor of the case's latest certificate (``personal-id``);
    ``active_degree`` is None when the producer sent a degree outside 25/50/75/100 (an issue
    says so); ``degrees`` holds the valid degrees the case has had, in the order sent.
    """

    patient: PatientId
    care_unit: HsaId
    issuer: HsaId
    start: date
    end: date
    active_degree: int | None
    degrees: tuple[int, ...]
    certificate_count: int
    length_days: int
    periods: tuple[SickLeavePeriod, ...]


@dataclass(frozen=True, slots=True)
class SickLeaveCases:
    """The cases taken, and the issues on what could not be taken as it was."""

    records: tuple[SickLeaveCase, ...]
    issues: tuple[Issue, ...]


def build_request(
    care_unit: HsaId,
    *,
    max_days_between_certificates: int = 5,
    min_length_days: int | None = None,
    max_length_days: int | None = None,
    staff: Sequence[HsaId] = (),
) -> etree._Element:
    """The ``ListSickLeavesForCare`` request; ``staff`` narrows it to those doctors' cases."""
    request = etree.Element(f"{{{NS}}}ListSickLeavesForCare", nsmap={"ns": NS, "t": TYPES_NS})

    def hsa(name: str, value: HsaId) -> None:
        element = etree.SubElement(request, f"{{{NS}}}{name}")
        etree.SubElement(element, f"{{{TYPES_NS}}}root").text = HSA_ROOT
        etree.SubElement(element, f"{{{TYPES_NS}}}extension").text = value.value

    hsa("enhets-id", care_unit)
    etree.SubElement(request, f"{{{NS}}}maxDagarMellanIntyg").text = str(
        max_days_between_certificates
    )
    if min_length_days is not None:
        etree.SubElement(request, f"{{{NS}}}minstaSjukskrivningslangd").text = str(min_length_days)
    if max_length_days is not None:
        etree.SubElement(request, f"{{{NS}}}maxSjukskrivningslangd").text = str(max_length_days)
    for member in staff:
        hsa("personal-id", member)
    return request


def _count(value: str | None, where: str) -> tuple[int, list[Issue]]:
    try:
        return int(value or ""), []
    except ValueError:
        return 0, [error(IssueCode.VALUE, f"{quoted(value)} is not an integer", where)]


def _read_case(element: etree._Element, where: str) -> tuple[SickLeaveCase | None, list[Issue]]:
    patient, issues = read_patient(child(element, NS, "person-id"), TYPES_NS, f"{where}.person-id")
    care_unit, found = read_hsa(
        child(element, NS, "enhets-id"), TYPES_NS, f"{where}.enhets-id", "care unit"
    )
    issues += found
    issuer, found = read_hsa(
        child(element, NS, "personal-id"), TYPES_NS, f"{where}.personal-id", "issuer"
    )
    issues += found
    start, found = read_date(text(element, NS, "startdatum"), f"{where}.startdatum")
    issues += found
    end, found = read_date(text(element, NS, "slutdatum"), f"{where}.slutdatum")
    issues += found
    certificates, found = _count(text(element, NS, "antalIntyg"), f"{where}.antalIntyg")
    issues += found
    length, found = _count(text(element, NS, "sjukskrivningslangd"), f"{where}.sjukskrivningslangd")
    issues += found
    grade = child(element, NS, "sjukskrivningsgrad")
    active, found = read_degree(
        None if grade is None else text(grade, NS, "aktivGrad"),
        f"{where}.sjukskrivningsgrad.aktivGrad",
    )
    issues += found
    degrees: list[int] = []
    all_valid = active is not None
    listed = None if grade is None else child(grade, NS, "grader")
    for index, value in enumerate([] if listed is None else children(listed, NS, "grad")):
        degree, found = read_degree(
            (value.text or "").strip(), f"{where}.sjukskrivningsgrad.grader.grad[{index}]"
        )
        issues += found
        if degree is not None:
            degrees.append(degree)
        else:
            all_valid = False
    if patient is None or care_unit is None or issuer is None or start is None or end is None:
        return None, issues
    periods: tuple[SickLeavePeriod, ...] = ()
    if active is not None and all_valid and set(degrees) <= {active}:
        try:
            periods = (SickLeavePeriod(start, end, active),)
        except DomainError as exc:
            issues.append(error(IssueCode.INVARIANT, f"{exc.message}; no period taken", where))
    case = SickLeaveCase(
        patient=patient,
        care_unit=care_unit,
        issuer=issuer,
        start=start,
        end=end,
        active_degree=active,
        degrees=tuple(degrees),
        certificate_count=certificates,
        length_days=length,
        periods=periods,
    )
    return case, issues


def read_response(body: etree._Element) -> SickLeaveCases:
    """The cases of a ``ListSickLeavesForCareResponse``.

    A case whose patient, unit, issuer or dates cannot be taken is left out with an error
    issue; a degree outside 25/50/75/100 is an issue pointing at it (never rounded) and keeps
    the case without that degree and without periods.
    """
    if body.tag != f"{{{NS}}}{ROOT_NAME}":
        raise DeliveryError(f"expected {ROOT_NAME}, got {body.tag}", retryable=False)
    records: list[SickLeaveCase] = []
    issues: list[Issue] = []
    listing = child(body, NS, "sjukfallLista")
    for index, element in enumerate([] if listing is None else children(listing, NS, "sjukfall")):
        record, found = _read_case(element, f"{ROOT_NAME}.sjukfallLista.sjukfall[{index}]")
        issues += found
        if record is not None:
            records.append(record)
    log.info("rivta.sick_leaves.read", contract=ROOT_NAME, records=len(records), issues=len(issues))
    return SickLeaveCases(tuple(records), tuple(issues))


class ListSickLeavesForCareClient(RivtaClient):
    """``ListSickLeavesForCare`` 1.0 over SOAP 1.1 (RIVTA BP 2.1)."""

    soap_action = SOAP_ACTION
    what = "ListSickLeavesForCare"

    async def fetch(
        self,
        care_unit: HsaId,
        *,
        max_days_between_certificates: int = 5,
        min_length_days: int | None = None,
        max_length_days: int | None = None,
        staff: Sequence[HsaId] = (),
    ) -> SickLeaveCases:
        """The sick-leave cases of ``care_unit``; certificates at most
        ``max_days_between_certificates`` apart make one case."""
        request = build_request(
            care_unit,
            max_days_between_certificates=max_days_between_certificates,
            min_length_days=min_length_days,
            max_length_days=max_length_days,
            staff=staff,
        )
        return read_response(await self._call(request))
