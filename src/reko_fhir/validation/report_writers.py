"""The four report formats, written as results come: memory stays flat on any input size.

A writer takes one result at a time (``add``) and closes the document (``finish``), keeping only
what the end needs: the totals, the best-practice groups (a count and five names each) and, for
SARIF, the rules met. JUnit's suite element carries the totals as attributes, so its test cases
wait in a temporary file until the end. Formats: see reports.py.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field, replace
from typing import TextIO
from xml.sax.saxutils import quoteattr

from lxml import etree

from reko_fhir import __version__
from reko_fhir.outcomes import Issue, IssueSeverity
from reko_fhir.validation.issue_kinds import is_best_practice, is_undecided
from reko_fhir.validation.reports import Result, Totals, json_pointer

_SARIF_LEVEL = {"fatal": "error", "error": "error", "warning": "warning", "information": "note"}


@dataclass(slots=True)
class _Tally:
    resources: int = 0
    errors: int = 0
    warnings: int = 0
    undecided: int = 0

    def add(self, result: Result) -> None:
        if result.skipped:
            return
        self.resources += 1
        self.errors += len(result.errors)
        self.warnings += sum(1 for i in result.issues if i.severity is IssueSeverity.WARNING)
        self.undecided += len(result.undecided)

    def totals(self) -> Totals:
        return Totals(self.resources, self.errors, self.warnings, self.undecided)


@dataclass(slots=True)
class Writer:
    out: TextIO
    best_practice: str = "group"  # group (text: one line each), show, off (left out)
    tally: _Tally = field(default_factory=_Tally)
    failed: bool = False  # a resource with an error was written

    def add(self, result: Result) -> None:
        if self.best_practice == "off":
            result = replace(result, issues=[i for i in result.issues if not is_best_practice(i)])
        self.tally.add(result)
        self.failed = self.failed or any(i.is_error for i in result.issues)
        self._write(result)

    def finish(self) -> Totals:
        totals = self.tally.totals()
        self._end(totals)
        return totals

    def _write(self, result: Result) -> None:
        raise NotImplementedError

    def _end(self, totals: Totals) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class TextWriter(Writer):
    groups: dict[str, tuple[int, list[str]]] = field(default_factory=dict)

    def _write(self, result: Result) -> None:
        for note in result.notes:
            self.out.write(f"{result.source}: note: {note}\n")
        for issue in result.issues:
            if self.best_practice == "group" and is_best_practice(issue):
                count, names = self.groups.get(issue.diagnostics, (0, []))
                self.groups[issue.diagnostics] = (count + 1, [*names, result.name][:5])
                continue
            where = f"{result.source}: {result.name}"
            if issue.expression and issue.expression != result.resource_type:
                where += f": {issue.expression}"
            self.out.write(f"{where}: {issue.severity.value}: {issue.diagnostics}\n")

    def _end(self, totals: Totals) -> None:
        for diagnostics, (count, names) in self.groups.items():
            shown = ", ".join(names) + (f" and {count - len(names)} more" if count > 5 else "")
            self.out.write(
                f"best practice: warning: {diagnostics} ({count} resource(s): {shown})\n"
            )
        self.out.write(totals.line() + "\n")


def _issue_json(issue: Issue) -> dict[str, str | None]:
    return {
        "severity": issue.severity.value,
        "code": issue.code.value,
        "diagnostics": issue.diagnostics,
        "expression": issue.expression,
    }


@dataclass(slots=True)
class JsonWriter(Writer):
    count: int = 0

    def _write(self, result: Result) -> None:
        doc = {
            "source": result.source,
            "resourceType": result.resource_type,
            "id": result.resource_id,
            **({"pointer": result.pointer} if result.pointer else {}),
            **({"notes": result.notes} if result.notes else {}),
            "undecided": len(result.undecided),
            "issues": [_issue_json(i) for i in result.issues],
        }
        text = json.dumps(doc, ensure_ascii=False, indent=2).replace("\n", "\n    ")
        self.out.write(('{\n  "results": [\n    ' if not self.count else ",\n    ") + text)
        self.count += 1

    def _end(self, totals: Totals) -> None:
        self.out.write('{\n  "results": [' if not self.count else "\n  ]")
        if not self.count:
            self.out.write("]")
        summary = json.dumps(totals.as_json(), indent=2).replace("\n", "\n  ")
        self.out.write(f',\n  "summary": {summary}\n}}\n')


def _located(issue: Issue) -> str:
    """``expression: diagnostics``, or the diagnostics alone (never ``None:``)."""
    return f"{issue.expression}: {issue.diagnostics}" if issue.expression else issue.diagnostics


@dataclass(slots=True)
class JUnitWriter(Writer):
    cases: TextIO = field(
        default_factory=lambda: tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
    )
    checked: int = 0
    failures: int = 0
    skipped: int = 0

    def _write(self, result: Result) -> None:
        name = result.name + (f" ({result.pointer})" if result.pointer else "")
        case = etree.Element("testcase", classname=result.source, name=name)
        if result.skipped:
            self.skipped += 1
            etree.SubElement(case, "skipped", message="; ".join(result.notes))
        else:
            self.checked += 1
            if result.errors:
                self.failures += 1
                failure = etree.SubElement(
                    case, "failure", message=result.errors[0].diagnostics, type="validation"
                )
                failure.text = "\n".join(_located(i) for i in result.errors)
            others = [i for i in result.issues if not i.is_error]
            if others:
                out = etree.SubElement(case, "system-out")
                out.text = "\n".join(f"{i.severity.value}: {_located(i)}" for i in others)
        self.cases.write("    " + etree.tostring(case, encoding="unicode") + "\n")

    def _end(self, totals: Totals) -> None:
        self.out.write("<?xml version='1.0' encoding='UTF-8'?>\n<testsuites>\n")
        self.out.write(
            f"  <testsuite name={quoteattr('reko-fhir validate')} tests='{self.checked}'"
            f" failures='{self.failures}' errors='0' skipped='{self.skipped}'>\n    <properties>\n"
        )
        for name, value in totals.as_json().items():
            self.out.write(f"      <property name={quoteattr(name)} value='{value}'/>\n")
        self.out.write("    </properties>\n")
        self.cases.seek(0)
        while chunk := self.cases.read(1 << 16):
            self.out.write(chunk)
        self.cases.close()
        self.out.write("  </testsuite>\n</testsuites>\n")


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


@dataclass(slots=True)
class SarifWriter(Writer):
    rules: dict[str, dict[str, object]] = field(default_factory=dict)
    count: int = 0

    def _write(self, result: Result) -> None:
        uri, line = _artifact(result.source)
        for issue in result.issues:
            rule_id, description = _rule_of(issue)
            if rule_id not in self.rules:
                self.rules[rule_id] = {"id": rule_id, "shortDescription": {"text": description}}
            physical: dict[str, object] = {"artifactLocation": {"uri": uri}}
            if line is not None:
                physical["region"] = {"startLine": line}
            finding = {
                "ruleId": rule_id,
                "ruleIndex": list(self.rules).index(rule_id),
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
            head = (
                '{\n  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",\n'
                '  "version": "2.1.0",\n  "runs": [{\n  "results": [\n    '
            )
            self.out.write((head if not self.count else ",\n    ") + json.dumps(finding))
            self.count += 1

    def _end(self, totals: Totals) -> None:
        if not self.count:
            self.out.write(
                '{\n  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",\n'
                '  "version": "2.1.0",\n  "runs": [{\n  "results": ['
            )
        driver = {
            "name": "reko-fhir",
            "version": __version__,
            "informationUri": "https://hl7.org/fhir/R4/validation.html",
            "rules": list(self.rules.values()),
        }
        tool = json.dumps({"driver": driver}, ensure_ascii=False, indent=2)
        properties = json.dumps(totals.as_json())
        self.out.write(f'\n  ],\n  "tool": {tool},\n  "properties": {properties}\n  }}]\n}}\n')


WRITERS: dict[str, type[Writer]] = {
    "text": TextWriter,
    "json": JsonWriter,
    "junit": JUnitWriter,
    "sarif": SarifWriter,
}
