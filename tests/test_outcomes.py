"""OperationOutcomes are built in one place, with HTTP statuses that follow from the issues."""

from __future__ import annotations

from reko_fhir.outcomes import (
    IssueCode,
    OperationOutcomeError,
    error,
    http_status,
    outcome,
    warning,
)


def test_an_outcome_carries_severity_code_diagnostics_and_expression() -> None:
    built = outcome([error(IssueCode.REQUIRED, "subject is required", "Procedure.subject")])
    (issue,) = built.issue
    assert (issue.severity, issue.code, issue.diagnostics, issue.expression) == (
        "error",
        "required",
        "subject is required",
        ["Procedure.subject"],
    )


def test_an_empty_outcome_says_all_is_well() -> None:
    (issue,) = outcome([]).issue
    assert (issue.severity, issue.code) == ("information", "informational")


def test_statuses_follow_the_first_error() -> None:
    assert http_status([warning(IssueCode.BUSINESS_RULE, "late")]) == 200
    assert http_status([warning(IssueCode.VALUE, "w"), error(IssueCode.NOT_FOUND, "gone")]) == 404
    assert http_status([error(IssueCode.BUSINESS_RULE, "no consent")]) == 422
    assert http_status([error(IssueCode.TOO_COSTLY, "too big")]) == 413
    assert OperationOutcomeError([error(IssueCode.DUPLICATE, "again")]).status == 409
