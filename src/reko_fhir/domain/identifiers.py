"""Swedish identifiers: personnummer, samordningsnummer, HSA-id and organisation number.

Each is a validated value object. Patient numbers never show in full in ``repr`` or ``str``:
patient data law treats them as sensitive, and log lines are built from ``repr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from reko_fhir.domain.errors import DomainError


def luhn_check_digit(digits: str) -> int:
    """Return the Luhn (mod 10) check digit for ``digits`` (weights 2,1,2,1… from the left)."""
    total = 0
    for index, char in enumerate(digits):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


class PatientIdKind(StrEnum):
    """Which national number identifies a patient."""

    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"


# ASCII digits only, and fullmatch (not "$", which also matches before a trailing newline).
_PATIENT_ID = re.compile(r"(\d{8})-?(\d{4})", re.ASCII)
_TWELVE_DIGITS = re.compile(r"\d{12}", re.ASCII)
_SAMORDNING_DAY_OFFSET = 60


@dataclass(frozen=True, slots=True)
class PatientId:
    """A personnummer or samordningsnummer in its 12-digit form ``YYYYMMDDNNNC``.

    The date part must be a real date (samordningsnummer: day + 60) and ``C`` is the Luhn check
    digit over the last ten digits. Use :meth:`parse` for text that may carry a hyphen.
    """

    value: str = field(repr=False)
    kind: PatientIdKind = field(init=False)

    def __post_init__(self) -> None:
        if not _TWELVE_DIGITS.fullmatch(self.value):
            raise DomainError("value", "a personnummer has 12 digits, YYYYMMDDNNNC")
        year, month, day = int(self.value[:4]), int(self.value[4:6]), int(self.value[6:8])
        kind = PatientIdKind.PERSONNUMMER
        if day > _SAMORDNING_DAY_OFFSET:
            kind = PatientIdKind.SAMORDNINGSNUMMER
            day -= _SAMORDNING_DAY_OFFSET
        try:
            date(year, month, day)
        except ValueError:
            raise DomainError("value", f"the date part of the {kind} is not a real date") from None
        if luhn_check_digit(self.value[2:11]) != int(self.value[11]):
            raise DomainError("value", f"the check digit of the {kind} is wrong")
        object.__setattr__(self, "kind", kind)

    @classmethod
    def parse(cls, text: str) -> PatientId:
        """Accept ``YYYYMMDDNNNC`` or ``YYYYMMDD-NNNC`` (surrounding blanks ignored)."""
        match = _PATIENT_ID.fullmatch(text.strip())
        if match is None:
            raise DomainError("value", "a personnummer has 12 digits, YYYYMMDD-NNNC")
        return cls(match.group(1) + match.group(2))

    @property
    def birth_date(self) -> date:
        day = int(self.value[6:8])
        if self.kind is PatientIdKind.SAMORDNINGSNUMMER:
            day -= _SAMORDNING_DAY_OFFSET
        return date(int(self.value[:4]), int(self.value[4:6]), day)

    @property
    def masked(self) -> str:
        """The form safe for logs and messages: date part only, ``19850312-****``."""
        return f"{self.value[:8]}-****"

    def __repr__(self) -> str:
        return f"PatientId({self.masked}, {self.kind})"

    def __str__(self) -> str:
        return self.masked


# Not glued to a word (a HSA-id, a hash) unless a percent-escape precedes it: in a URL
# ``%7C191212121212`` is ``|191212121212``.
_ANY_PATIENT_ID = re.compile(
    r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))(\d{6}|\d{8})[-+]?(\d{4})(?!\d)"
)


# A resource id is usually a UUID, and about one in 300 starts ``12345678-1234-`` in digits
# only: that is an id, not a personnummer, and masking it made error messages wrong.
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def mask_patient_ids(text: str) -> str:
    """``text`` with every personnummer-shaped number masked (``19780412-****``), for logs.

    Digits inside a UUID are left alone.
    """
    uuids = [match.span() for match in _UUID.finditer(text)]

    def mask(match: re.Match[str]) -> str:
        start, end = match.span()
        if any(left <= start and end <= right for left, right in uuids):
            return match.group(0)
        return f"{match.group(1)}-****"

    return _ANY_PATIENT_ID.sub(mask, text)


# The organisation part is the organisation number as 10 digits, or as 12 with the ``16``
# prefix (``SE165565594230-1000``): both occur in the national directory (contract 2).
_HSA_ID = re.compile(r"SE(?:16)?\d{10}-[A-Za-z0-9]{1,31}", re.ASCII)


@dataclass(frozen=True, slots=True)
class HsaId:
    """An HSA-id from the national directory: ``SE`` + the organisation number (10 digits, or 12
    with the ``16`` prefix) + ``-`` + 1–31 letters/digits."""

    value: str

    def __post_init__(self) -> None:
        if not _HSA_ID.fullmatch(self.value):
            raise DomainError(
                "value",
                "an HSA-id is SE + 10 digits (or 12 beginning 16) + '-' + 1-31 letters/digits",
            )

    def __str__(self) -> str:
        return self.value


_ORG_NUMBER = re.compile(r"\d{10}", re.ASCII)


@dataclass(frozen=True, slots=True)
class OrganisationNumber:
    """A Swedish organisation number: 10 digits, the last a Luhn check digit."""

    value: str

    def __post_init__(self) -> None:
        if not _ORG_NUMBER.fullmatch(self.value):
            raise DomainError("value", "an organisation number has 10 digits")
        if luhn_check_digit(self.value[:9]) != int(self.value[9]):
            raise DomainError("value", "the check digit of the organisation number is wrong")

    @classmethod
    def parse(cls, text: str) -> OrganisationNumber:
        """Accept ``NNNNNNNNNN`` or ``NNNNNN-NNNN``."""
        return cls(text.strip().replace("-", ""))

    def __str__(self) -> str:
        return self.value
