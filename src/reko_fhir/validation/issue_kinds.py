"""Kinds of validation issues the reports count or group: undecided checks, best practice.

An undecided check is an invariant the engine could not evaluate: severity information, code
not-supported, diagnostics ``<key>: not checked: <why>; expression: <FHIRPath>``; or a binding
that could not be checked: ``<value set> (<strength> binding): not checked: <why>``
(https://hl7.org/fhir/R4/valueset-issue-type.html#not-supported). Best-practice warnings are
the FHIR core's warning-severity invariants (dom-6 "should have narrative" and the like).
"""

from __future__ import annotations

from functools import cache

from reko_fhir.outcomes import Issue, IssueCode, IssueSeverity
from reko_fhir.validation.definitions import Definitions

# Begins the diagnostics of a check that was not decided (reports count them: is_undecided).
UNDECIDED_MARK = "not checked"


@cache
def _best_practice_keys() -> frozenset[str]:
    """The FHIR core's warning-severity invariants (dom-6 and the like): all recommendations."""
    return frozenset(
        c["key"]
        for structure in Definitions.core().structures.values()
        for element in structure.get("snapshot", {}).get("element", [])
        for c in element.get("constraint", [])
        if c.get("severity") == "warning"
    )


def is_best_practice(issue: Issue) -> bool:
    """A warning from a best-practice invariant of the core (reports group or leave them out)."""
    return (
        issue.severity is IssueSeverity.WARNING
        and issue.code is IssueCode.INVARIANT
        and issue.diagnostics.split(":", 1)[0] in _best_practice_keys()
    )


def is_undecided(issue: Issue) -> bool:
    """An issue that says a check could not be made: an invariant the engine cannot decide
    (information), a binding whose value set or code system is not loaded here (information;
    a warning for a code system not known at all)."""
    return issue.code is IssueCode.NOT_SUPPORTED and f": {UNDECIDED_MARK}: " in issue.diagnostics
