"""Personnummer, samordningsnummer, HSA-id and organisation number."""

from __future__ import annotations

from datetime import date

import pytest

from reko_fhir.domain import (
    CareUnit,
    DomainError,
    HsaId,
    OrganisationNumber,
    Patient,
    PatientId,
    PatientIdKind,
    luhn_check_digit,
    mask_patient_ids,
)


@pytest.mark.parametrize(
    ("digits", "check"), [("121212121", 2), ("202100552", 1), ("202100211", 4)]
)
def test_luhn_check_digit(digits: str, check: int) -> None:
    assert luhn_check_digit(digits) == check


@pytest.mark.parametrize("text", ["19121212-1212", "191212121212", " 19121212-1212 "])
def test_a_personnummer_parses_with_or_without_hyphen(text: str) -> None:
    pid = PatientId.parse(text)
    assert pid.value == "191212121212"
    assert pid.kind is PatientIdKind.PERSONNUMMER
    assert pid.birth_date == date(1912, 12, 12)


def test_a_samordningsnummer_is_day_plus_sixty() -> None:
    pid = PatientId.parse("19910374-4521")
    assert pid.kind is PatientIdKind.SAMORDNINGSNUMMER
    assert pid.birth_date == date(1991, 3, 14)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("19121212-1213", "check digit"),
        ("19900230-1234", "not a real date"),
        ("19900292-1234", "not a real date"),  # day 92 - 60 = 32
        ("1212121212", "12 digits"),
        ("19121212-12A2", "12 digits"),
        ("", "12 digits"),
    ],
)
def test_invalid_patient_numbers_are_refused(text: str, message: str) -> None:
    with pytest.raises(DomainError, match=message) as caught:
        PatientId.parse(text)
    assert caught.value.field == "value"
    assert text.replace("-", "")[-4:] not in caught.value.message or not text


def test_the_constructor_wants_the_plain_twelve_digits() -> None:
    with pytest.raises(DomainError):
        PatientId("19121212-1212")


def test_a_patient_number_never_shows_in_full() -> None:
    pid = PatientId.parse("19780412-2385")
    patient = Patient(pid, "Lindqvist", "Anna")
    logged = "%r %s" % (pid, pid)  # noqa: UP031 - the form logging uses
    for shown in (repr(pid), str(pid), f"{pid}", logged, repr(patient), str(patient)):
        assert "197804122385" not in shown
        assert "2385" not in shown
    assert pid.masked == "19780412-****"


@pytest.mark.parametrize(
    "value", ["SE2321000016-A1B2", "SE0000000000-x", "SE2321000016-" + "A" * 31]
)
def test_valid_hsa_ids(value: str) -> None:
    assert str(HsaId(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        "SE2321000016",
        "SE232100001-A1",
        "se2321000016-A1",
        "SE2321000016-" + "A" * 32,
        "SE2321000016-A_1",
    ],
)
def test_invalid_hsa_ids(value: str) -> None:
    with pytest.raises(DomainError, match="HSA-id"):
        HsaId(value)


def test_organisation_numbers() -> None:
    assert OrganisationNumber.parse("202100-5521").value == "2021005521"
    with pytest.raises(DomainError, match="check digit"):
        OrganisationNumber("2021005522")
    with pytest.raises(DomainError, match="10 digits"):
        OrganisationNumber("20210055")


def test_a_care_unit_needs_a_name() -> None:
    with pytest.raises(DomainError) as caught:
        CareUnit(HsaId("SE2321000016-A1"), "  ")
    assert caught.value.field == "name"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("identifier=197804122385", "identifier=19780412-****"),
        ("pnr 19780412-2385.", "pnr 19780412-****."),
        ("short 780412-2385", "short 780412-****"),
        ("hsa SE2321000016-A1B2", "hsa SE2321000016-A1B2"),
        ("uuid 123456789012345", "uuid 123456789012345"),
    ],
)
def test_patient_numbers_are_masked_for_logs(text: str, masked: str) -> None:
    assert mask_patient_ids(text) == masked
