"""What ``reko-fhir validate`` and (later) ``$validate`` run: profiles chosen, rules applied.

A resource is validated against the profile asked for, else against every profile of its
``meta.profile`` that is loaded (an unknown one is a warning), else against the reko profile of
its type. A Bundle's entries are each validated at ``Bundle.entry[i].resource`` and the rules
across resources run with the Bundle as context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reko_fhir.mapping.codings import structure
from reko_fhir.outcomes import Issue, IssueCode, distinct, warning
from reko_fhir.package_data import PROFILES_DIR
from reko_fhir.validation.case_rules import (
    IDENTIFIER_SYSTEMS,
    BundleResolver,
    Resolver,
    identifier_issues,
    identifier_shaped,
    reference_issues,
    rule_issues,
    select_objects,
)
from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.diagnosis import DIAGNOSIS_SYSTEMS, diagnosis_coded, diagnosis_issues
from reko_fhir.validation.validator import Validator

Json = dict[str, Any]


# What the identifier and diagnosis rules look for, as JSON text holds it (rules_may_apply)
_RULE_SYSTEMS = tuple(s.encode() for s in sorted(IDENTIFIER_SYSTEMS | DIAGNOSIS_SYSTEMS))


_ASCII_ESCAPES = tuple(b"\\u00" + bytes([digit]) for digit in b"01234567")  # \u0000-\u007f


def rules_may_apply(text: bytes | None) -> bool:
    """Whether the resource read from JSON ``text`` may hold a system the identifier rules
    (case_rules.identifier_issues) or the diagnosis rule (diagnosis.is_diagnosis_system) act on.

    Their systems are ASCII, as is ``icd`` (is_diagnosis_system looks for ``icd-10``/``icd10``
    in any case; no other character lowers to these letters side by side). Where the text
    writes every ASCII character as it is (no escape but ``\\uXXXX`` of a character beyond
    ASCII, such as ``\\u00e4``), a text without any of those systems and without ``icd`` holds
    none, and both rules would find nothing. No text (XML, an object made in code): they may.
    """
    if text is None or b"icd" in text.lower():
        return True
    if b"\\" in text and (
        text.count(b"\\") != text.count(b"\\u") or any(e in text for e in _ASCII_ESCAPES)
    ):
        return True  # an escape that may spell an ASCII character
    return any(system in text for system in _RULE_SYSTEMS)


# Types whose reko profile is not Reko<Type>: every stored Task is a worklist Task (contract 2).
_DEFAULT_PROFILE = {"Task": "RekoWorklistTask"}


class ProfilesNotFoundError(RuntimeError):
    """The reko profiles are missing: validating would check nothing, so nothing may start."""


def reko_definitions(
    igs: list[Path] | None = None, profiles_dir: Path | None = None
) -> Definitions:
    """R4 core + the reko package + any ``--ig`` folders (later ones win).

    Raises :class:`ProfilesNotFoundError` when the reko package is absent or has no reko
    profile: every write would otherwise pass against the base spec alone."""
    definitions = Definitions.core()
    folder = profiles_dir or PROFILES_DIR
    if not folder.is_dir():
        raise ProfilesNotFoundError(f"no reko profiles: {folder} is not a folder")
    definitions.add_folder(folder)
    if definitions.structure(structure("RekoPatient")) is None:
        raise ProfilesNotFoundError(f"no reko profiles: {folder} holds no RekoPatient profile")
    for ig in igs or []:
        definitions.add_folder(ig)
    return definitions


class ValidationService:
    def __init__(self, definitions: Definitions, *, compiled: bool = True) -> None:
        """``compiled=False``: FHIRPath through fhirpathpy (Validator), as the tests compare."""
        self.definitions = definitions
        self.validator = Validator(definitions, compiled=compiled)

    def profiles_for(
        self, resource: Json, profile: str | None, where: str
    ) -> tuple[list[str | None], list[Issue]]:
        if profile:
            return [profile], []
        notes: list[Issue] = []
        # A meta or meta.profile of the wrong JSON type is the walk's error at that element.
        meta = resource.get("meta")
        listed = meta.get("profile") if isinstance(meta, dict) else None
        declared = [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
        loaded = [p for p in declared if self.definitions.structure(p.split("|")[0]) is not None]
        for unknown in set(declared) - set(loaded):
            notes.append(
                warning(
                    IssueCode.NOT_SUPPORTED,
                    f"profile '{unknown}' is not loaded; not checked",
                    f"{where}.meta.profile",
                )
            )
        if loaded:
            return [p.split("|")[0] for p in loaded], notes
        kind = str(resource.get("resourceType"))
        default = structure(_DEFAULT_PROFILE.get(kind, f"Reko{kind}"))
        return [default if self.definitions.structure(default) else None], notes

    def validate(
        self,
        resource: Json,
        profile: str | None = None,
        where: str | None = None,
        resolver: Resolver | None = None,
        text: bytes | None = None,
    ) -> list[Issue]:
        """Every issue of ``resource`` (a Bundle: of its entries and across them too).

        ``text``: the JSON text ``resource`` was read from, when at hand: the identifier and
        diagnosis rules then run only where it may hold one of their systems (rules_may_apply).
        """
        path = where or str(resource.get("resourceType"))
        profiles, issues = self.profiles_for(resource, profile, path)
        # Within a Bundle, FHIRPath's resolve() finds the other entries (ctm-1 and the like).
        entry = resolver.resolve if isinstance(resolver, BundleResolver) else None
        for url in profiles:
            issues += self.validator.validate(resource, url, path, entry)
        if rules_may_apply(text):
            # One walk finds the objects of both rules: identifiers (not in contained resources)
            # and diagnosis codings (in them too); both have a system.
            shaped, coded = select_objects(
                resource, path, [(identifier_shaped, False), (diagnosis_coded, True)], "system"
            )
            issues += identifier_issues(resource, path, shaped)
            issues += _not_said_yet(diagnosis_issues(resource, path, coded), issues)
        if resource.get("resourceType") == "Bundle":
            context = BundleResolver.of(resource)
            for i, entry in enumerate(resource.get("entry") or []):
                inner = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(inner, dict):
                    where_ = f"{path}.entry[{i}].resource"
                    issues += self.validate(inner, None, where_, context, text)
        elif resolver is not None:
            issues += rule_issues(resource, path, resolver)
            issues += reference_issues(resource, path, resolver)
        return distinct(issues)


def _not_said_yet(found: list[Issue], issues: list[Issue]) -> list[Issue]:
    """``found`` without the ones inside an element already reported as a diagnosis: a diagnosis
    in ``Procedure.reasonCode`` is the profile's error (max 0, which names the diagnosis), said
    once, not again by rule 5 at ``Procedure.reasonCode[0].coding[0]``."""
    if not found:
        return found  # (most resources)
    said = [
        i.expression for i in issues if i.is_error and i.expression and "diagnos" in i.diagnostics
    ]

    def inside(expression: str | None) -> bool:
        return expression is not None and any(
            expression == e or expression.startswith((f"{e}.", f"{e}[")) for e in said
        )

    return [issue for issue in found if not inside(issue.expression)]
