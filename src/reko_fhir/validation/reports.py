"""Validation results as text, JSON, JUnit XML (one test case per resource) or SARIF 2.1.0.

JUnit is read by GitLab, Jenkins and GitHub test views; SARIF by code-scanning views
(https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lxml import etree

from reko_fhir import __version__
from reko_fhir.outcomes import Issue, IssueSeverity


@dataclass(frozen=True, slots=True)
class Result:
    source: str
    resource_type: str
    resource_id: str | None
    issues: list[Issue]

    @property
    def name(self) -> str:
        return (
            f"{self.resource_type}/{self.resource_id}" if self.resource_id else self.resource_type
        )

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]


def _issue_json(issue: Issue) -> dict[str, str | None]:
    return {
        "severity": issue.severity.value,
        "code": issue.code.value,
        "diagnostics": issue.diagnostics,
        "expression": issue.expression,
    }


def text(results: list[Result]) -> str:
    lines = []
    for result in results:
        for issue in result.issues:
            where = f"{result.source}: {result.name}"
            if issue.expression:
                where += f": {issue.expression}"
            lines.append(f"{where}: {issue.severity.value}: {issue.diagnostics}")
    errors = sum(len(r.errors) for r in results)
    warnings = sum(1 for r in results for i in r.issues if i.severity is IssueSeverity.WARNING)
    lines.append(f"{len(results)} resource(s): {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"


def as_json(results: list[Result]) -> str:
    doc = [
        {
            "source": r.source,
            "resourceType": r.resource_type,
            "id": r.resource_id,
            "issues": [_issue_json(i) for i in r.issues],
        }
        for r in results
    ]
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def junit(results: list[Result]) -> str:
    suite = etree.Element(
        "testsuite",
        name="reko-fhir validate",
        tests=str(len(results)),
        failures=str(sum(1 for r in results if r.errors)),
        errors="0",
    )
    for result in results:
        case = etree.SubElement(suite, "testcase", classname=result.source, name=result.name)
        if result.errors:
            failure = etree.SubElement(
                case, "failure", message=result.errors[0].diagnostics, type="validation"
            )
            failure.text = "\n".join(f"{i.expression}: {i.diagnostics}" for i in result.errors)
        warnings = [i for i in result.issues if not i.is_error]
        if warnings:
            out = etree.SubElement(case, "system-out")
            out.text = "\n".join(
                f"{i.severity.value}: {i.expression}: {i.diagnostics}" for i in warnings
            )
    suites = etree.Element("testsuites")
    suites.append(suite)
    return etree.tostring(
        suites, pretty_print=True, xml_declaration=True, encoding="UTF-8"
    ).decode()


_SARIF_LEVEL = {"fatal": "error", "error": "error", "warning": "warning", "information": "note"}


def sarif(results: list[Result]) -> str:
    findings = []
    for result in results:
        for issue in result.issues:
            rule = (
                issue.diagnostics.split(":")[0]
                if issue.code.value == "invariant"
                else issue.code.value
            )
            findings.append(
                {
                    "ruleId": rule,
                    "level": _SARIF_LEVEL[issue.severity.value],
                    "message": {"text": issue.diagnostics},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": result.source.split(":")[0]}
                            },
                            "logicalLocations": [
                                {
                                    "fullyQualifiedName": issue.expression or result.name,
                                    "kind": "element",
                                }
                            ],
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
                    }
                },
                "results": findings,
            }
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


RENDERERS = {"text": text, "json": as_json, "junit": junit, "sarif": sarif}
