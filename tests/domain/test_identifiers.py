"""Personnummer, samordningsnummer, HSA-id and organisation number."""

from __future__ import annotations

import random
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


def reference_luhn(digits: str) -> int:
    """Textbook Luhn, written independently: double every second digit from the right."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10


def pnr(first_eleven: str) -> str:
    """A 12-digit patient number with the correct check digit appended."""
    assert len(first_eleven) == 11
    return first_eleven + str(reference_luhn(first_eleven[2:]))


def refused(build: object, field: str = "value", match: str | None = None) -> DomainError:
    with pytest.raises(DomainError, match=match) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field
    return caught.value


# --- Luhn ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "check"),
    [
        ("121212121", 2),  # 19121212-1212, Skatteverket's test personnummer
        ("780412238", 5),  # 19780412-2385
        ("202100552", 1),  # Försäkringskassan 202100-5521
        ("202100211", 4),  # Arbetsförmedlingen 202100-2114
        ("000000000", 0),
    ],
)
def test_luhn_check_digit_of_known_numbers(digits: str, check: int) -> None:
    assert luhn_check_digit(digits) == check


def test_luhn_agrees_with_a_reference_implementation() -> None:
    rng = random.Random(20200201)
    for _ in range(500):
        digits = "".join(rng.choice("0123456789") for _ in range(9))
        assert luhn_check_digit(digits) == reference_luhn(digits), digits


# --- PatientId ----------------------------------------------------------------------------


def test_the_test_personnummer_is_valid_and_its_neighbour_is_not() -> None:
    assert PatientId("191212121212").kind is PatientIdKind.PERSONNUMMER
    refused(lambda: PatientId("191212121213"), match="check digit")
    refused(lambda: PatientId.parse("19121212-1213"), match="check digit")


@pytest.mark.parametrize("text", ["19121212-1212", "191212121212", " 19121212-1212 "])
def test_a_personnummer_parses_with_or_without_hyphen(text: str) -> None:
    pid = PatientId.parse(text)
    assert pid.value == "191212121212"
    assert pid.kind is PatientIdKind.PERSONNUMMER
    assert pid.birth_date == date(1912, 12, 12)
    assert pid == PatientId("191212121212")


@pytest.mark.parametrize(
    ("first_eleven", "born"),
    [
        ("19910374452", date(1991, 3, 14)),
        ("19910361123", date(1991, 3, 1)),  # day 61 is the 1st
        ("19910391123", date(1991, 3, 31)),  # day 91 is the 31st
        ("20000289123", date(2000, 2, 29)),  # leap day + 60
    ],
)
def test_a_samordningsnummer_is_day_plus_sixty(first_eleven: str, born: date) -> None:
    number = pnr(first_eleven)
    for text in (number, f"{number[:8]}-{number[8:]}"):
        pid = PatientId.parse(text)
        assert pid.kind is PatientIdKind.SAMORDNINGSNUMMER
        assert pid.birth_date == born


@pytest.mark.parametrize(
    "first_eleven",
    [
        "19900230123",  # 30 February
        "19000229123",  # 1900 is no leap year
        "19901301123",  # month 13
        "19900001123",  # month 0
        "19900100123",  # day 0
        "19900132123",  # day 32
        "19900160123",  # day 60: neither a personnummer day nor a samordningsnummer day
        "19900290123",  # samordningsnummer for 30 February
        "19900492123",  # samordningsnummer for 32 April
    ],
)
def test_the_date_part_must_be_a_real_date(first_eleven: str) -> None:
    number = pnr(first_eleven)  # a correct check digit, so only the date can be at fault
    refused(lambda: PatientId(number), match="not a real date")
    refused(lambda: PatientId.parse(f"{number[:8]}-{number[8:]}"), match="not a real date")


def test_a_real_leap_day_is_accepted() -> None:
    assert PatientId(pnr("20000229123")).birth_date == date(2000, 2, 29)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1212121212",  # the 10-digit short form is not accepted
        "121212-1212",
        "1912121212120",  # 13 digits
        "19121212121",  # 11 digits
        "19121212-12120",
        "19121212-12A2",
        "1912121a1212",
        "19121212--1212",
        "19121212+1212",
        "19121212 1212",
    ],
)
def test_wrong_length_or_letters_are_refused(text: str) -> None:
    error = refused(lambda: PatientId.parse(text), match="12 digits")
    assert "1212" not in error.message


@pytest.mark.parametrize("text", ["19121212-1212", " 191212121212", "1912121212120"])
def test_the_constructor_wants_exactly_twelve_digits(text: str) -> None:
    refused(lambda: PatientId(text), match="12 digits")


def test_a_trailing_newline_is_not_part_of_a_personnummer() -> None:
    refused(lambda: PatientId("191212121212\n"))


def test_only_ascii_digits_make_a_personnummer() -> None:
    arabic = "191212121212".translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    refused(lambda: PatientId(arabic))


# --- masking --------------------------------------------------------------------------------

SECRET = "2385"  # the last four digits of 19780412-2385


def shown_forms(thing: object) -> list[str]:
    return [
        repr(thing),
        str(thing),
        f"{thing}",
        f"{thing!r}",
        "%r" % (thing,),  # noqa: UP031 - the form the logging module uses
        "%s" % (thing,),  # noqa: UP031
        "{}".format(thing),  # noqa: UP032
        repr([thing]),
        repr({"key": thing}),
    ]


def test_a_patient_number_never_shows_in_full() -> None:
    pid = PatientId.parse("19780412-2385")
    patient = Patient(pid, "Lindqvist", "Anna")
    for thing in (pid, patient):
        for shown in shown_forms(thing):
            assert "197804122385" not in shown
            assert "19780412-2385" not in shown
            assert SECRET not in shown, shown
    assert pid.masked == "19780412-****"
    assert str(pid) == "19780412-****"
    assert "19780412-****" in repr(pid)
    assert "personnummer" in repr(pid)
    assert "Lindqvist" in repr(patient)


def test_a_samordningsnummer_never_shows_in_full() -> None:
    number = pnr("19910374452")
    pid = PatientId(number)
    for shown in shown_forms(pid):
        assert number not in shown
        assert number[8:] not in shown
    assert "samordningsnummer" in repr(pid)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("identifier=197804122385", "identifier=19780412-****"),
        ("pnr 19780412-2385.", "pnr 19780412-****."),
        ("short 780412-2385", "short 780412-****"),
        ("hsa SE2321000016-A1B2", "hsa SE2321000016-A1B2"),
        ("uuid 123456789012345", "uuid 123456789012345"),
        (
            "CarePlan/59618483-3482-474e-b200-123456789012 is not known",
            "CarePlan/59618483-3482-474e-b200-123456789012 is not known",
        ),
        (
            "Patient/19780412-2385 of CarePlan/aa618483-3482-474e-b200-0e2a4c1d9f00",
            "Patient/19780412-**** of CarePlan/aa618483-3482-474e-b200-0e2a4c1d9f00",
        ),
    ],
)
def test_patient_numbers_are_masked_for_logs(text: str, masked: str) -> None:
    assert mask_patient_ids(text) == masked


# --- HSA-id -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["SE2321000016-A1B2", "SE0000000000-x", "SE2321000016-1", "SE2321000016-" + "A" * 31],
)
def test_valid_hsa_ids(value: str) -> None:
    assert HsaId(value).value == value
    assert str(HsaId(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SE2321000016",  # no suffix
        "SE2321000016-",  # empty suffix
        "2321000016-A1",  # no SE
        "SE-2321000016-A1",
        "se2321000016-A1",  # lower-case country
        "SV2321000016-A1",
        "SE232100001-A1",  # 9 digits
        "SE23210000160-A1",  # 11 digits
        "SE232100001X-A1",
        "SE2321000016-" + "A" * 32,  # suffix too long
        "SE2321000016-A_1",
        "SE2321000016-A 1",
        " SE2321000016-A1",
        "SE2321000016-A1 ",
    ],
)
def test_invalid_hsa_ids(value: str) -> None:
    refused(lambda: HsaId(value), match="HSA-id")


def test_a_trailing_newline_is_not_part_of_an_hsa_id() -> None:
    refused(lambda: HsaId("SE2321000016-A1\n"))


# --- organisation number ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2021005521", "2021005521"),  # Försäkringskassan
        ("202100-5521", "2021005521"),
        ("2021002114", "2021002114"),  # Arbetsförmedlingen
        ("202100-2114", "2021002114"),
        (" 202100-2114 ", "2021002114"),
    ],
)
def test_organisation_numbers_parse(text: str, value: str) -> None:
    org = OrganisationNumber.parse(text)
    assert org.value == value
    assert str(org) == value
    assert org == OrganisationNumber(value)


@pytest.mark.parametrize("value", ["2021005522", "2021005520", "2021002115"])
def test_a_wrong_check_digit_is_refused(value: str) -> None:
    refused(lambda: OrganisationNumber(value), match="check digit")
    refused(lambda: OrganisationNumber.parse(f"{value[:6]}-{value[6:]}"), match="check digit")


@pytest.mark.parametrize("value", ["", "20210055", "202100552", "20210055210", "202100552X"])
def test_an_organisation_number_has_ten_digits(value: str) -> None:
    refused(lambda: OrganisationNumber(value), match="10 digits")


def test_the_constructor_does_not_take_the_hyphen() -> None:
    refused(lambda: OrganisationNumber("202100-5521"), match="10 digits")


@pytest.mark.parametrize("value", ["2021005521\n", "٢٠٢١٠٠٥٥٢١"])
def test_only_ten_ascii_digits_make_an_organisation_number(value: str) -> None:
    refused(lambda: OrganisationNumber(value))


# --- a small model that uses them ---------------------------------------------------------


def test_a_care_unit_needs_a_name() -> None:
    refused(lambda: CareUnit(HsaId("SE2321000016-A1"), "  "), field="name")
    refused(lambda: CareUnit(HsaId("SE2321000016-A1"), ""), field="name")
    assert CareUnit(HsaId("SE2321000016-A1"), "VC Luthagen").name == "VC Luthagen"


def test_a_domain_error_can_be_placed_under_a_prefix() -> None:
    error = DomainError("end", "too early")
    assert str(error) == "end: too early"
    assert isinstance(error, ValueError)
    moved = error.within("case")
    assert (moved.field, moved.message) == ("case.end", "too early")
    assert DomainError("", "x").within("case").field == "case"
