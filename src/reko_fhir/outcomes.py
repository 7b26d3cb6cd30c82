"""The one place that builds OperationOutcomes and picks an HTTP status for them.

Every problem the project reports to a machine — a validation finding, a mapping problem, an
unreadable request — becomes an ``OperationOutcome.issue`` with a severity, a code from the
FHIR issue-type value set, a diagnostics text and, where an element is to blame, the FHIRPath
``expression`` that locates it. See https://hl7.org/fhir/R4/operationoutcome.html.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue

from reko_fhir.domain.identifiers import mask_patient_ids


class IssueSeverity(StrEnum):
    """https://hl7.org/fhir/R4/valueset-issue-severity.html"""

    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"


class IssueCode(StrEnum):
    """The subset of https://hl7.org/fhir/R4/valueset-issue-type.html the project uses."""

    INVALID = "invalid"
    STRUCTURE = "structure"
    REQUIRED = "required"
    VALUE = "value"
    INVARIANT = "invariant"
    SECURITY = "security"
    LOGIN = "login"
    EXPIRED = "expired"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    DELETED = "deleted"
    MULTIPLE_MATCHES = "multiple-matches"
    CODE_INVALID = "code-invalid"
    BUSINESS_RULE = "business-rule"
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    TOO_COSTLY = "too-costly"
    NOT_SUPPORTED = "not-supported"
    PROCESSING = "processing"
    EXCEPTION = "exception"
    INFORMATIONAL = "informational"


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding, independent of how it is shown (OperationOutcome, text, JUnit…)."""

    severity: IssueSeverity
    code: IssueCode
    diagnostics: str
    expression: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in (IssueSeverity.ERROR, IssueSeverity.FATAL)


def error(code: IssueCode, diagnostics: str, expression: str | None = None) -> Issue:
    return Issue(IssueSeverity.ERROR, code, diagnostics, expression)


def warning(code: IssueCode, diagnostics: str, expression: str | None = None) -> Issue:
    return Issue(IssueSeverity.WARNING, code, diagnostics, expression)


def distinct(issues: Iterable[Issue]) -> list[Issue]:
    """``issues`` without repeats, in their first order (two checks may find one problem)."""
    return list(dict.fromkeys(issues))


def information(code: IssueCode, diagnostics: str, expression: str | None = None) -> Issue:
    return Issue(IssueSeverity.INFORMATION, code, diagnostics, expression)


def outcome(issues: Iterable[Issue]) -> OperationOutcome:
    """An OperationOutcome holding ``issues``; an empty list gives the required 'all is well'."""
    entries = [
        OperationOutcomeIssue(
            severity=i.severity.value,
            code=i.code.value,
            diagnostics=_printable(i.diagnostics),
            expression=[_printable(i.expression)] if i.expression else None,
        )
        for i in issues
    ]
    if not entries:
        entries = [
            OperationOutcomeIssue(
                severity=IssueSeverity.INFORMATION.value,
                code=IssueCode.INFORMATIONAL.value,
                diagnostics="All OK",
            )
        ]
    return OperationOutcome(issue=entries)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(text: str) -> str:
    """Messages quote what the client sent. A control character in it could not be written as
    FHIR XML (or read in a log), so it is shown escaped (``\\u001f``); a personnummer is
    masked (``19780412-****``): outcomes end up in logs and dead letters."""
    return mask_patient_ids(_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def outcome_json(issues: Iterable[Issue]) -> dict[str, Any]:
    """The OperationOutcome of ``issues`` as FHIR JSON (a dict)."""
    result: dict[str, Any] = json.loads(outcome(issues).model_dump_json())
    return result


_STATUS_BY_CODE = {
    IssueCode.NOT_FOUND: 404,
    IssueCode.DELETED: 410,
    IssueCode.MULTIPLE_MATCHES: 412,
    IssueCode.CONFLICT: 409,
    IssueCode.DUPLICATE: 409,
    IssueCode.SECURITY: 403,
    IssueCode.LOGIN: 401,
    IssueCode.EXPIRED: 401,
    IssueCode.FORBIDDEN: 403,
    IssueCode.NOT_SUPPORTED: 400,
    IssueCode.TOO_COSTLY: 413,
    IssueCode.STRUCTURE: 400,
    IssueCode.EXCEPTION: 500,
}


def http_status(issues: Iterable[Issue]) -> int:
    """The status that answers a request with these issues: the first error decides.

    Content errors a parser accepted (rules, profiles, codes) are 422 Unprocessable Entity,
    as https://hl7.org/fhir/R4/http.html#2.21.0.9 asks for failed validation.
    """
    for issue in issues:
        if issue.is_error:
            return _STATUS_BY_CODE.get(issue.code, 422)
    return 200


class OperationOutcomeError(Exception):
    """Raise to answer with an OperationOutcome; the status follows from the issues."""

    def __init__(self, issues: Iterable[Issue], *, status: int | None = None) -> None:
        self.issues = list(issues)
        self._status = status
        super().__init__("; ".join(i.diagnostics for i in self.issues))

    @property
    def status(self) -> int:
        """The given status (e.g. 412 for a stale If-Match), else the one the issues imply."""
        return self._status or http_status(self.issues)

    def outcome(self) -> OperationOutcome:
        return outcome(self.issues)
