"""Reading the pieces of a RIVTA answer into domain values, or into issues that say why not.

Each reader takes the element, the namespace of its children and the FHIRPath-like location of
the element in the answer (``ListSickLeavesForCareResponse.sjukfallLista.sjukfall[2]``), and
returns the value or ``None`` with the :class:`~reko_fhir.outcomes.Issue` that explains it.
Issue texts never quote a patient number: the location is what points at the record.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from reko_fhir.delivery.rivta.oids import HSA_ROOT, patient_kind
from reko_fhir.domain import (
    SICK_LEAVE_DEGREES,
    DomainError,
    HsaId,
    PatientId,
    SickLeavePeriod,
    mask_patient_ids,
)
from reko_fhir.outcomes import Issue, IssueCode, error, warning


def quoted(value: str | None) -> str:
    """``value`` for an issue text: quoted, and masked should a patient number hide in it."""
    return mask_patient_ids(repr(value))


def child(parent: etree._Element, namespace: str, name: str) -> etree._Element | None:
    return parent.find(f"{{{namespace}}}{name}")


def children(parent: etree._Element, namespace: str, name: str) -> list[etree._Element]:
    return parent.findall(f"{{{namespace}}}{name}")


def text(parent: etree._Element, namespace: str, name: str) -> str | None:
    found = child(parent, namespace, name)
    return found.text.strip() if found is not None and found.text else None


def ii(element: etree._Element, types_ns: str) -> tuple[str, str]:
    """An II (``root``, ``extension``) of the types namespace; absent parts are ``""``."""
    return text(element, types_ns, "root") or "", text(element, types_ns, "extension") or ""


def read_patient(
    element: etree._Element | None, types_ns: str, where: str
) -> tuple[PatientId | None, list[Issue]]:
    """A personnummer/samordningsnummer; a number that fails its check leaves the record out."""
    if element is None:
        return None, [error(IssueCode.REQUIRED, "the record names no patient", where)]
    root, extension = ii(element, types_ns)
    try:
        patient = PatientId(extension)
    except DomainError as exc:
        # exc names the broken part (date or check digit), never the number itself.
        return None, [
            error(
                IssueCode.VALUE,
                f"the patient number is invalid ({exc.message}); record left out",
                f"{where}.extension",
            )
        ]
    kind = patient_kind(root)
    if kind is None:
        return None, [
            error(
                IssueCode.CODE_INVALID,
                f"{quoted(root)} is no patient-number root; record left out",
                f"{where}.root",
            )
        ]
    if kind is not patient.kind:
        # The number itself says which kind it is; the root is redundant, so note and go on.
        return patient, [
            warning(
                IssueCode.VALUE,
                f"the root announces a {kind} but the number is a {patient.kind}",
                f"{where}.root",
            )
        ]
    return patient, []


def read_hsa(
    element: etree._Element | None, types_ns: str, where: str, role: str
) -> tuple[HsaId | None, list[Issue]]:
    """An HSA-id under the HSA root; anything else leaves the record out."""
    if element is None:
        return None, [error(IssueCode.REQUIRED, f"the record names no {role}", where)]
    root, extension = ii(element, types_ns)
    if root != HSA_ROOT:
        return None, [
            error(
                IssueCode.CODE_INVALID,
                f"the {role} is not under the HSA root {HSA_ROOT}",
                f"{where}.root",
            )
        ]
    try:
        return HsaId(extension), []
    except DomainError:
        return None, [
            error(
                IssueCode.VALUE,
                f"the {role} {quoted(extension)} is no valid HSA-id; record left out",
                f"{where}.extension",
            )
        ]


def read_date(value: str | None, where: str) -> tuple[date | None, list[Issue]]:
    """An ``xs:date``; a time-zone suffix is dropped, a calendar day is what the contract means."""
    if value is None:
        return None, [error(IssueCode.REQUIRED, "a date is missing", where)]
    try:
        return date.fromisoformat(value[:10]), []
    except ValueError:
        return None, [error(IssueCode.VALUE, f"{quoted(value)} is not a date", where)]


def read_degree(value: str | None, where: str) -> tuple[int | None, list[Issue]]:
    """A sick-leave degree; the contracts allow any integer, the domain only 25/50/75/100.

    A value outside those four is reported, never rounded (``rivta/xsd/README.md``).
    """
    try:
        degree = int(value or "")
    except ValueError:
        return None, [error(IssueCode.VALUE, f"{quoted(value)} is not an integer degree", where)]
    if degree not in SICK_LEAVE_DEGREES:
        return None, [
            error(
                IssueCode.BUSINESS_RULE,
                f"{degree} % is no sick-leave degree (25, 50, 75 or "
                "100); the period is left out, not rounded",
                where,
            )
        ]
    return degree, []


def read_period(
    start: str | None, end: str | None, degree: str | None, where: str, degree_name: str
) -> tuple[SickLeavePeriod | None, list[Issue]]:
    """One period from its start, end and degree texts; ``where`` locates the period."""
    first, issues = read_date(start, f"{where}.startdatum")
    last, more = read_date(end, f"{where}.slutdatum")
    issues += more
    value, more = read_degree(degree, f"{where}.{degree_name}")
    issues += more
    if first is None or last is None or value is None:
        return None, issues
    try:
        return SickLeavePeriod(first, last, value), issues
    except DomainError as exc:
        return None, [*issues, error(IssueCode.INVARIANT, f"{exc.message}; period left out", where)]
