"""FHIRPath ordering of FHIR ``date`` and ``dateTime`` values: partial precision, time zones.

https://hl7.org/fhirpath/N1/#comparison: the values are compared precision by precision from
the year; the first difference decides; a precision one value has and the other lacks makes the
result empty (unknown); values ending at the same precision, equal all along, are equal. Seconds
and their fraction are one precision, compared as decimals. A value with a time is compared in
UTC (its offset applied, which may change its date); a date without a time as it stands. That is
the HL7 validator's reading (FHIRPathEngine.compareDateTimeElements moves values finer than a
day to UTC, then BaseDateTimeType.compareTimes) and fhirpathpy's for typed values
(FP_DateTime.compare), which ``tests/validation/test_native_invariants.py`` checks this against.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

from reko_fhir.validation.primitives import PATTERNS

Components = tuple[Decimal, ...]

# A FHIR dateTime split into its parts (the ranges are PATTERNS["dateTime"]'s): in FHIR a time
# has seconds and a time zone, so its precisions are year, month, day or second.
_PARTS = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]+)?)(Z|[+-][0-9]{2}:[0-9]{2}))?)?)?"
)


def components(value: str) -> Components:
    """The precisions ``value`` has, coarsest first, a time moved to UTC (seconds as a decimal).

    ValueError when ``value`` is not a FHIR ``date`` or ``dateTime`` naming a real day.
    """
    match = _PARTS.fullmatch(value)
    if match is None or not PATTERNS["dateTime"].match(value):
        raise ValueError(f"not a FHIR dateTime: {value!r}")
    year, month, day, hour, minute, second, zone = match.groups()
    if day is not None:  # 2024-02-30 matches the pattern, and is no day
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            raise ValueError(f"not a day: {value!r}") from None
    if hour is None:
        return tuple(Decimal(part) for part in (year, month, day) if part is not None)
    offset = timedelta(0)
    if zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        offset = -offset if zone[0] == "-" else offset
    try:  # the seconds stay apart: a leap second (60) is no Python time
        utc = datetime(int(year), int(month), int(day), int(hour), int(minute)) - offset
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"not a dateTime Python has in UTC: {value!r}") from None
    return (
        *(Decimal(part) for part in (utc.year, utc.month, utc.day, utc.hour, utc.minute)),
        Decimal(second),
    )


def compare(left: str, right: str) -> int | None:
    """-1, 0 or 1 as FHIRPath orders two dateTimes; None when their precisions leave it unknown.

    ``@2024-05 <= @2024`` is empty, ``@2023-12 <= @2024`` true, ``@2024-01-01T00:30:00+01:00 <
    @2024-01-01`` true (it is 2023-12-31 in UTC). ValueError when either is not a dateTime.
    """
    ours, theirs = components(left), components(right)
    for mine, other in zip(ours, theirs, strict=False):
        if mine != other:
            return -1 if mine < other else 1
    return 0 if len(ours) == len(theirs) else None
