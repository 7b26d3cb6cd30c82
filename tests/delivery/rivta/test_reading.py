"""The readers that turn answer elements into domain values or issues."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from lxml import etree

from reko_fhir.delivery.rivta import ListSickLeavesForCareClient
from reko_fhir.delivery.rivta.reading import read_date, read_hsa, read_patient, read_period
from reko_fhir.domain import HsaId, PatientId, SickLeavePeriod
from reko_fhir.outcomes import IssueCode, IssueSeverity

T = "urn:t"


def ii(root: str, extension: str) -> etree._Element:
    element = etree.Element("{urn:x}id")
    etree.SubElement(element, f"{{{T}}}root").text = root
    etree.SubElement(element, f"{{{T}}}extension").text = extension
    return element


def test_a_root_that_disagrees_with_the_number_is_a_warning_only() -> None:
    patient, issues = read_patient(ii("1.2.752.129.2.1.3.1", "198503722384"), T, "x.person")
    assert patient == PatientId("198503722384")
    assert [(i.severity, i.expression) for i in issues] == [
        (IssueSeverity.WARNING, "x.person.root")
    ]


def test_a_patient_under_a_foreign_root_is_left_out() -> None:
    patient, issues = read_patient(ii("1.2.752.129.2.1.4.1", "191212121212"), T, "x.person")
    assert patient is None
    assert issues[0].code is IssueCode.CODE_INVALID
    assert read_patient(None, T, "x.person")[1][0].code is IssueCode.REQUIRED


def test_hsa_ids_need_the_hsa_root_and_a_valid_value_and_never_quote_a_patient() -> None:
    assert read_hsa(ii("1.2.752.129.2.1.4.1", "SE2321000016-E001"), T, "u", "unit") == (
        HsaId("SE2321000016-E001"),
        [],
    )
    assert read_hsa(ii("1.2.3", "SE2321000016-E001"), T, "u", "unit")[1][0].expression == "u.root"
    hsa, issues = read_hsa(ii("1.2.752.129.2.1.4.1", "191212121212"), T, "u", "unit")
    assert hsa is None
    assert issues[0].expression == "u.extension"
    assert "191212121212" not in issues[0].diagnostics
    assert "19121212-****" in issues[0].diagnostics


def test_dates_and_periods() -> None:
    assert read_date("2024-02-29+01:00", "d") == (date(2024, 2, 29), [])
    assert read_date("2023-02-29", "d")[1][0].code is IssueCode.VALUE
    period, issues = read_period("2024-03-01", "2024-02-01", "50", "p", "nedsattning")
    assert period is None
    assert issues[0].code is IssueCode.INVARIANT
    assert read_period("2024-01-01", "2024-01-31", "25", "p", "g") == (
        SickLeavePeriod(date(2024, 1, 1), date(2024, 1, 31), 25),
        [],
    )


@pytest.mark.parametrize("degree", ["0", "1", "24", "26", "99", "101"])
def test_no_degree_is_rounded(degree: str) -> None:
    period, issues = read_period("2024-01-01", "2024-01-31", degree, "p", "nedsattning")
    assert period is None
    assert issues[0].expression == "p.nedsattning"


async def test_the_logical_address_may_be_an_hsa_id_but_not_blank() -> None:
    async with httpx.AsyncClient() as http:
        client = ListSickLeavesForCareClient(http, "http://x", HsaId("SE2321000016-INTYG"))
        assert client.logical_address == "SE2321000016-INTYG"
        with pytest.raises(ValueError, match="LogicalAddress"):
            ListSickLeavesForCareClient(http, "http://x", "  ")
