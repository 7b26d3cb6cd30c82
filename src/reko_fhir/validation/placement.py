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


def extension_context(  # noqa: PLR0917 - the walk's context
    run: Run,
    definitions: Definitions,
    host: Rule,
    extension: Any,
    where: str,
    places: dict[tuple[int, int], str | None] | None = None,
) -> None:
    """An extension stands only where its definition's ``context`` allows it.

    ``places``: the answers found before, by (host rule, extension definition): the same on
    every resource (the caller keeps ``host`` alive as long as ``places``)."""
    url = extension.get("url") if isinstance(extension, dict) else None
    structure = definitions.structure(url) if isinstance(url, str) else None
    if structure is None:
        return  # no definition, no context
    if places is None:
        message = _misplaced(structure, host, url)
    else:
        key = (id(host), id(structure))
        if key in places:
            message = places[key]
        else:
            message = places[key] = _misplaced(structure, host, url)
    if message is not None:
        run.add(_ERROR, IssueCode.STRUCTURE, message, where)


def _misplaced(structure: Json, host: Rule, url: object) -> str | None:
    """Why an extension of ``structure`` may not stand on ``host``, or None when it may."""
    contexts = [c for c in structure.get("context", []) if c.get("type") == "element"]
    if not contexts:
        return None
    host_type = (
        host.path
        if "." not in host.path
        else (host.type_codes[0] if host.type_codes else "BackboneElement")
    )
    allowed = {str(c.get("expression")) for c in contexts}
    if allowed & {"Element", "Base", "Resource", "DomainResource", host.path, host_type}:
        return None
    places = ", ".join(sorted(allowed))
    return f"extension {url} is not allowed on {host.path} (only {places})"


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
