"""Where an element may stand and what it may point to: an extension's context, a
reference's target type (https://hl7.org/fhir/R4/extensibility.html#context,
https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.type.targetProfile).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reko_fhir.outcomes import IssueCode, IssueSeverity
from reko_fhir.validation.compiled import Rule
from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.element_checks import Run, target_type
from reko_fhir.validation.issue_kinds import UNDECIDED_MARK

Json = dict[str, Any]
_ERROR = IssueSeverity.ERROR


def extension_context(
    run: Run, definitions: Definitions, host: Rule, extension: Any, where: str
) -> None:
    """An extension stands only where its definition's ``context`` allows it."""
    url = extension.get("url") if isinstance(extension, dict) else None
    structure = definitions.structure(url) if isinstance(url, str) else None
    contexts = [c for c in (structure or {}).get("context", []) if c.get("type") == "element"]
    if not contexts:
        return
    host_type = (
        host.path
        if "." not in host.path
        else (host.type_codes[0] if host.type_codes else "BackboneElement")
    )
    allowed = {str(c.get("expression")) for c in contexts}
    if allowed & {"Element", "Base", "Resource", "DomainResource", host.path, host_type}:
        return
    places = ", ".join(sorted(allowed))
    run.add(
        _ERROR,
        IssueCode.STRUCTURE,
        f"extension {url} is not allowed on {host.path} (only {places})",
        where,
    )


def reference_target(  # noqa: PLR0917 - the walk's context
    run: Run,
    definitions: Definitions,
    is_a: Callable[[str, str], bool],
    rule: Rule,
    value: Json,
    where: str,
) -> None:
    """The target's type is that of one of the target profiles (any one may match).

    The type is read from the reference (``Patient/1``, an absolute URL), or from the
    resource it resolves to: a contained one (``#id``), a Bundle entry (``urn:uuid:…``).
    A target profile not loaded here could allow any type: if no loaded one matches, the
    check is undecided (and said so), not passed.
    """
    reference = value.get("reference")
    targets = rule.target_profiles
    if not isinstance(reference, str) or not targets:
        return
    kind = target_type(run, reference)
    if kind is None:
        return  # a reference not resolvable here: ref-1 and the rules across resources
    if kind in rule.fitting_targets:
        return  # as found before, against the same definitions
    allowed, unknown = set(), []
    for url in targets:
        structure = definitions.structure(url)
        if structure is None:
            unknown.append(url)
        else:
            allowed.add(structure["type"])
    if "Resource" in allowed or any(is_a(kind, t) for t in allowed):
        rule.fitting_targets.add(kind)
        return
    if unknown:
        why = f"{', '.join(unknown)} is not loaded here; the target is a {kind}"
        run.add(
            IssueSeverity.INFORMATION,
            IssueCode.NOT_SUPPORTED,
            f"target profile: {UNDECIDED_MARK}: {why}",
            where,
        )
        return
    run.add(
        _ERROR,
        IssueCode.STRUCTURE,
        f"a reference to {kind}, not to {' or '.join(sorted(allowed))}",
        where,
    )
