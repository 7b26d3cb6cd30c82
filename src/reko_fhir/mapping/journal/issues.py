"""Problems found while reading a journal export: collected, never raised as tracebacks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class MappingIssue:
    """One problem, located by source file, record and field.

    ``record`` is the reader's label (``row 7``, ``line 34 <Aktivitet>``, ``activities[3]``),
    ``record_id`` the record's own id when it has one, and ``field`` the field as the mapping
    file names it in the source (a column, XPath or JSON path), so a person can find it.
    Messages never repeat a personnummer.
    """

    file: str
    record: str
    field: str | None
    message: str
    severity: Severity = Severity.ERROR
    record_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: {self.record}"
        if self.record_id and self.record_id not in self.record:
            where += f" ({self.record_id})"
        if self.field:
            where += f", field '{self.field}'"
        return f"{self.severity}: {where}: {self.message}"


class MappingSpecError(ValueError):
    """The mapping file itself is wrong (a usage error, not a problem of the export)."""
