"""The invariants of the complex data types, on every element of that type; ext-1 on extensions.

A resource's snapshot gives an element its own constraints (ele-1 on ``EpisodeOfCare.period``),
not those of its type: per-1 stands on the root of Period's StructureDefinition. The HL7
validator checks an element against its type's definition as well
(https://hl7.org/fhir/R4/validation.html), so the walker applies to every element of a complex
type the invariants of that type's core StructureDefinition: per-1 (Period), ref-1 (Reference),
qty-3 (Quantity and its profiles Age, Count, Distance, Duration, MoneyQuantity, SimpleQuantity,
with age-1, cnt-3, dis-1, drt-1, mqty-1, sqty-1), cpt-2 (ContactPoint), att-1 (Attachment),
rng-2 (Range), rat-1 (Ratio), exp-1 (Expression), trd-1..3 (TriggerDefinition), eld-*
(ElementDefinition). They come with the type's compiled rule tree (Validator.rule), found once
per type; the most met ones are decided in Python (native.py: per-1, ref-1, qty-3, cpt-2), the
others go through FHIRPath (Constraint.holds).

ele-1 and ext-1 are left out (compiled.NATIVE_CONSTRAINTS). ext-1 is checked here on the JSON:
an extension has nested extensions or a value[x], not both and not neither
(https://hl7.org/fhir/R4/extensibility.html#Extension).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reko_fhir.validation.compiled import Constraint, Rule
from reko_fhir.validation.definitions import CORE_BASE, Definitions
from reko_fhir.validation.primitives import is_primitive

Json = dict[str, Any]

# ext-1 as R4's Extension StructureDefinition words it (a test compares them).
EXT_1 = "ext-1: Must have either extensions or value[x], not both"


def ext_1_holds(extension: Json) -> bool:
    """``extension.exists() != value.exists()`` on an extension in FHIR JSON.

    ``value`` is the choice ``value[x]``: any ``valueString``, ``valueCoding`` …, also one with
    only extensions of its own (``_valueString``). A null or an empty array is no item.
    """
    nested = extension.get("extension")
    has_nested = nested is not None and nested != []
    has_value = any(
        item is not None
        and (
            (key.startswith("value") and key[5:6].isupper())
            or (key.startswith("_value") and key[6:7].isupper())
        )
        for key, item in extension.items()
    )
    return has_nested != has_value


class TypeInvariants:
    """The invariants of each complex data type, found and compiled once per type code."""

    def __init__(self, definitions: Definitions, rule: Callable[[str], Rule | None]) -> None:
        self._definitions = definitions
        self._rule = rule  # the validator's compiled profiles (Validator.rule)
        self._found: dict[str, tuple[Constraint, ...]] = {}

    def of(self, type_code: str) -> tuple[Constraint, ...]:
        """Those of ``Period`` for ``"Period"``; none for primitives, BackboneElement, resources."""
        found = self._found.get(type_code)
        if found is None:
            found = self._found[type_code] = self._compile(type_code)
        return found

    def _compile(self, type_code: str) -> tuple[Constraint, ...]:
        if is_primitive(type_code):
            return ()
        structure = self._definitions.structure(CORE_BASE + type_code)
        if structure is None or structure.get("kind") != "complex-type":
            return ()  # a resource (contained, Bundle.entry.resource) is validated as one
        rule = self._rule(CORE_BASE + type_code)
        return tuple(rule.constraints) if rule is not None else ()
