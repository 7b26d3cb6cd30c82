"""Turning the text of an export field into a typed value, or a message saying why not."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from reko_fhir.domain import DomainError, HsaId, OrganisationNumber, PatientId

ISO = "iso"


class ConversionError(ValueError):
    """The text is not a value of the field's type; the message never repeats a personnummer."""


def to_date(text: str, formats: tuple[str, ...]) -> date:
    for fmt in formats:
        try:
            return date.fromisoformat(text) if fmt == ISO else datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ConversionError(f"'{text}' is not a date in the format {' or '.join(formats)}")


def to_datetime(text: str, formats: tuple[str, ...], zone: ZoneInfo) -> datetime:
    """Parse and place in the mapping's time zone: a time without offset is local time there.

    Every point in time ends in ``zone``, so two exports that write the same instant with
    different offsets give the same FHIR ``dateTime`` text.
    """
    for fmt in formats:
        try:
            parsed = datetime.fromisoformat(text) if fmt == ISO else datetime.strptime(text, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(zone)
    raise ConversionError(f"'{text}' is not a date and time in the format {' or '.join(formats)}")


def to_int(text: str) -> int:
    # Exports write degrees as "50", "50%" or "50 %".
    cleaned = text.removesuffix("%").strip()
    if not cleaned.isdigit():
        raise ConversionError(f"'{text}' is not a whole number")
    return int(cleaned)


def to_patient_id(text: str) -> PatientId:
    try:
        return PatientId.parse(text)
    except DomainError as exc:
        raise ConversionError(f"invalid personnummer: {exc.message}") from None


def to_hsa_id(text: str) -> HsaId:
    try:
        return HsaId(text.strip())
    except DomainError as exc:
        raise ConversionError(f"'{text}' is not an HSA-id: {exc.message}") from None


def to_org_number(text: str) -> OrganisationNumber:
    try:
        return OrganisationNumber.parse(text)
    except DomainError as exc:
        raise ConversionError(f"'{text}' is not an organisation number: {exc.message}") from None
