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

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from lxml import etree

from reko_fhir import __version__
from reko_fhir.outcomes import Issue, IssueSeverity
from reko_fhir.validation.issue_kinds import is_best_practice, is_undecided


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


def _issue_json(issue: Issue) -> dict[str, str | None]:
    return {
        "severity": issue.severity.value,
        "code": issue.code.value,
        "diagnostics": issue.diagnostics,
        "expression": issue.expression,
    }


def _shown(results: list[Result], best_practice: str) -> list[Result]:
    if best_practice != "off":
        return results
    return [replace(r, issues=[i for i in r.issues if not is_best_practice(i)]) for r in results]


def text(results: list[Result], best_practice: str = "group") -> str:
    results = _shown(results, best_practice)
    lines: list[str] = []
    grouped: dict[str, list[str]] = {}
    for result in results:
        lines += [f"{result.source}: note: {note}" for note in result.notes]
        for issue in result.issues:
            if best_practice == "group" and is_best_practice(issue):
                grouped.setdefault(issue.diagnostics, []).append(result.name)
                continue
            where = f"{result.source}: {result.name}"
            if issue.expression and issue.expression != result.resource_type:
                where += f": {issue.expression}"
            lines.append(f"{where}: {issue.severity.value}: {issue.diagnostics}")
    for diagnostics, names in grouped.items():
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        lines.append(f"best practice: warning: {diagnostics} ({len(names)} resource(s): {shown})")
    lines.append(Totals.of(results).line())
    return "\n".join(lines) + "\n"


def as_json(results: list[Result], best_practice: str = "group") -> str:
    results = _shown(results, best_practice)
    doc = {
        "summary": Totals.of(results).as_json(),
        "results": [
            {
                "source": r.source,
                "resourceType": r.resource_type,
                "id": r.resource_id,
                **({"pointer": r.pointer} if r.pointer else {}),
                **({"notes": r.notes} if r.notes else {}),
                "undecided": len(r.undecided),
                "issues": [_issue_json(i) for i in r.issues],
            }
            for r in results
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def junit(results: list[Result], best_practice: str = "group") -> str:
    results = _shown(results, best_practice)
    totals = Totals.of(results)
    checked = [r for r in results if not r.skipped]
    suite = etree.Element(
        "testsuite",
        name="reko-fhir validate",
        tests=str(len(checked)),
        failures=str(sum(1 for r in checked if r.errors)),
        errors="0",
        skipped=str(len(results) - len(checked)),
    )
    properties = etree.SubElement(suite, "properties")
    for name, value in totals.as_json().items():
        etree.SubElement(properties, "property", name=name, value=str(value))
    for result in results:
        case_name = result.name + (f" ({result.pointer})" if result.pointer else "")
        case = etree.SubElement(suite, "testcase", classname=result.source, name=case_name)
        if result.skipped:
            etree.SubElement(case, "skipped", message="; ".join(result.notes))
            continue
        if result.errors:
            failure = etree.SubElement(
                case, "failure", message=result.errors[0].diagnostics, type="validation"
            )
            failure.text = "\n".join(_located(i) for i in result.errors)
        others = [i for i in result.issues if not i.is_error]
        if others:
            out = etree.SubElement(case, "system-out")
            out.text = "\n".join(f"{i.severity.value}: {_located(i)}" for i in others)
    suites = etree.Element("testsuites")
    suites.append(suite)
    return etree.tostring(
        suites, pretty_print=True, xml_declaration=True, encoding="UTF-8"
    ).decode()


def _located(issue: Issue) -> str:
    """``expression: diagnostics``, or the diagnostics alone (never ``None:``)."""
    return f"{issue.expression}: {issue.diagnostics}" if issue.expression else issue.diagnostics


_SARIF_LEVEL = {"fatal": "error", "error": "error", "warning": "warning", "information": "note"}


def _rule_of(issue: Issue) -> tuple[str, str]:
    """(rule id, its short description): an invariant's key, else the issue type."""
    if issue.code.value in ("invariant", "not-supported") and re.match(
        r"^[a-z0-9]+(-[a-z0-9]+)+: ", issue.diagnostics
    ):
        key, _, rest = issue.diagnostics.partition(": ")
        if is_undecided(issue):
            return f"{key}/not-decided", f"{key} could not be decided by the FHIRPath engine"
        return key, rest
    return issue.code.value, f"FHIR validation: {issue.code.value}"


def _artifact(source: str) -> tuple[str, int | None]:
    """``path`` or ``path:line`` (an NDJSON record) as (uri, line)."""
    path, _, line = source.rpartition(":")
    return (path, int(line)) if path and line.isdigit() else (source, None)


def sarif(results: list[Result], best_practice: str = "group") -> str:
    results = _shown(results, best_practice)
    rules: dict[str, dict[str, object]] = {}
    findings = []
    for result in results:
        uri, line = _artifact(result.source)
        for issue in result.issues:
            rule_id, description = _rule_of(issue)
            rules.setdefault(
                rule_id, {"id": rule_id, "shortDescription": {"text": description[:200]}}
            )
            physical: dict[str, object] = {"artifactLocation": {"uri": uri}}
            if line is not None:
                physical["region"] = {"startLine": line}
            findings.append(
                {
                    "ruleId": rule_id,
                    "ruleIndex": list(rules).index(rule_id),
                    "level": _SARIF_LEVEL[issue.severity.value],
                    "message": {"text": issue.diagnostics},
                    "locations": [
                        {
                            "physicalLocation": physical,
                            "logicalLocations": [
                                {
                                    "fullyQualifiedName": issue.expression or result.name,
                                    "kind": "element",
                                }
                            ],
                            "properties": {"jsonPointer": json_pointer(issue.expression)},
                        }
                    ],
                }
            )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "reko-fhir",
                        "version": __version__,
                        "informationUri": "https://hl7.org/fhir/R4/validation.html",
                        "rules": list(rules.values()),
                    }
                },
                "results": findings,
                "properties": Totals.of(results).as_json(),
            }
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


RENDERERS: dict[str, Callable[[list[Result], str], str]] = {
    "text": text,
    "json": as_json,
    "junit": junit,
    "sarif": sarif,
}
