"""Validation results as text, JSON, JUnit XML (one test case per resource) or SARIF 2.1.0.

JUnit is read by GitLab, Jenkins and GitHub test views; SARIF by code-scanning views
(https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html). Every report carries the
count of checks that could not be decided (validator.is_undecided): "0 errors" with undecided
checks is not a clean bill, and a pipeline must be able to see that.

Best-practice warnings (warning-severity invariants of the FHIR core, such as dom-6 "should have
narrative", met on every generated resource) are grouped into one line per invariant in the text
report, and can be left out of every report (``best_practice="off"``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace

from reko_fhir.outcomes import Issue, IssueSeverity
from reko_fhir.validation.issue_kinds import is_undecided


@dataclass(frozen=True, slots=True)
class Result:
    source: str
    resource_type: str
    resource_id: str | None
    issues: list[Issue]
    # Where in the file the resource stands (a Bundle entry: /entry/3/resource), JSON pointer.
    pointer: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return (
            f"{self.resource_type}/{self.resource_id}" if self.resource_id else self.resource_type
        )

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]

    @property
    def skipped(self) -> bool:
        """A file in a folder that is not FHIR: noted, not validated, not counted."""
        return self.resource_type == "skipped" and not self.issues

    @property
    def undecided(self) -> list[Issue]:
        """The checks that could not be made: not failed, but not passed either."""
        return [i for i in self.issues if is_undecided(i)]


@dataclass(frozen=True, slots=True)
class Totals:
    resources: int
    errors: int
    warnings: int
    undecided: int

    @classmethod
    def of(cls, results: list[Result]) -> Totals:
        results = [r for r in results if not r.skipped]
        return cls(
            len(results),
            sum(len(r.errors) for r in results),
            sum(1 for r in results for i in r.issues if i.severity is IssueSeverity.WARNING),
            sum(len(r.undecided) for r in results),
        )

    def line(self) -> str:
        """The one-line summary every run prints."""
        return (
            f"{self.resources} resource(s): {self.errors} error(s), {self.warnings} warning(s),"
            f" {self.undecided} check(s) not decided"
        )

    def as_json(self) -> dict[str, int]:
        return {
            "resources": self.resources,
            "errors": self.errors,
            "warnings": self.warnings,
            "undecided": self.undecided,
        }


def by_entry(result: Result, entries: list[object]) -> list[Result]:
    """``result`` of a Bundle split into the Bundle's own and one per entry resource.

    Each issue goes to the entry its FHIRPath names (``Bundle.entry[3].resource...``, kept as
    it is: it locates the element in the file); the rest (across entries) stays with the Bundle.
    """
    if not entries:
        return [result]  # not a Bundle (or an empty one): nothing to split
    own: list[Issue] = []
    found: dict[int, list[Issue]] = {i: [] for i, e in enumerate(entries) if isinstance(e, dict)}
    for issue in result.issues:
        match = _ENTRY.match(issue.expression or "")
        if match and int(match.group(1)) in found:
            found[int(match.group(1))].append(issue)  # its FHIRPath still from the Bundle
        else:
            own.append(issue)
    results = [replace(result, issues=own)]
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        results.append(
            Result(
                result.source,
                str(entry.get("resourceType")),
                entry.get("id") if isinstance(entry.get("id"), str) else None,
                found[index],
                f"{result.pointer}/entry/{index}/resource",
            )
        )
    return results


_ENTRY = re.compile(r"^Bundle\.entry\[(\d+)\]\.resource")


def json_pointer(expression: str | None) -> str:
    """The JSON pointer of a FHIRPath location (``Procedure.code.coding[0]`` → ``/code/coding/0``).

    Slice names (``:name``) and choice markers (``[x]``) name no JSON member: the pointer
    stops at the element that holds them.
    """
    if not expression:
        return ""
    parts: list[str] = []
    for step in expression.split(".")[1:]:
        name = step.split(":")[0]
        if name.endswith("[x]"):
            break
        match = re.fullmatch(r"([^\[]+)\[(\d+)\]", name)
        parts += [match.group(1), match.group(2)] if match else [name]
        if ":" in step:
            break
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def render(kind: str, results: list[Result], best_practice: str = "group") -> str:
    """The whole report of ``results`` as one string (the writers stream it: report_writers)."""
    from reko_fhir.validation.report_writers import WRITERS  # noqa: PLC0415 - it imports this

    out = io.StringIO()
    writer = WRITERS[kind](out, best_practice)
    for result in results:
        writer.add(result)
    writer.finish()
    return out.getvalue()


def text(results: list[Result], best_practice: str = "group") -> str:
    return render("text", results, best_practice)


def as_json(results: list[Result], best_practice: str = "group") -> str:
    return render("json", results, best_practice)


def junit(results: list[Result], best_practice: str = "group") -> str:
    return render("junit", results, best_practice)


def sarif(results: list[Result], best_practice: str = "group") -> str:
    return render("sarif", results, best_practice)
