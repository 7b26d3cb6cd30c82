"""What the validator's walk looks up at each element, built once per rule and kept:
the children that may stand inside it, their layout, and the walk plan (layout.py) for a
rule, a type and the base rule walked before it.

https://hl7.org/fhir/R4/profiling.html#snapshot (a profile's elements overlay its types')
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reko_fhir.validation.compiled import Rule, matches_pattern
from reko_fhir.validation.definitions import CORE_BASE
from reko_fhir.validation.layout import (
    Layout,
    Signatures,
    WalkPlan,
    checked_parts,
    single_type,
)
from reko_fhir.validation.primitives import PRIMITIVE_TYPES, is_primitive

_SYSTEM_TYPES = "http://hl7.org/fhirpath/"  # System.String … (primitives.is_primitive)


class WalkPlans:
    """Children, layouts and walk plans of the rules of one validator (which keeps every
    rule, and so their ids, alive as long as this)."""

    def __init__(
        self, rule: Callable[[str], Rule | None], is_a: Callable[[str, str], bool]
    ) -> None:
        self._rule = rule  # the validator's compiled profiles (Validator.rule)
        self._is_a = is_a
        self._children: dict[tuple[int, str | None], dict[str, Rule]] = {}
        self._layouts: dict[int, Layout] = {}  # by id() of a children dict kept in _children
        self._skip_sets: dict[tuple[int, int, bool], frozenset[str]] = {}
        self._same = Signatures().same
        # By (an extension's slice, the element of the base walk): what walked_as compares
        self._same_walks: dict[tuple[int, int], _SameWalk | None] = {}

    def children_of(self, rule: Rule, type_code: str | None) -> dict[str, Rule]:
        """What may stand inside an element: its type's children, overlaid by the profile's own."""
        key = (id(rule), type_code)  # ids repeat across profiles; rules live as long as self
        if key not in self._children:
            base: dict[str, Rule] = {}
            if type_code and type_code != "BackboneElement":  # a primitive's: for its `_x`
                type_rule = self._rule(CORE_BASE + type_code)
                if type_rule is not None:
                    base = type_rule.children
            self._children[key] = {**base, **rule.children} if base else rule.children
        return self._children[key]

    def walk_plan(self, rule: Rule, type_code: str | None, shadow: Rule | None) -> WalkPlan:
        """The plan of ``rule`` holding a ``type_code``, after ``shadow`` (the base's rule at
        this place, walked before) or alone; kept on the rule."""
        layout = self.layout_of(rule, type_code)
        walked: Layout | None = None
        skip: frozenset[str] = frozenset()  # children the base walk checked as the profile would
        if shadow is not None:
            walked = self.layout_of(shadow, type_code)
            same_host = "." not in rule.path or single_type(rule) == single_type(shadow)
            skip = self._skips(layout, walked, same_host)
        plan = WalkPlan(layout, walked, skip, self.children_only)
        rule.walks[type_code if shadow is None else (type_code, id(shadow))] = plan
        return plan

    def children_only(self, rule: Rule, type_code: str) -> bool:
        """A complex value of ``rule`` with ``type_code`` has nothing to check but its children
        and its type's invariants: no fixed value or pattern, binding, invariant of the element,
        type profile, nor what the walk's _complex checks of a Quantity, a Reference or an
        Extension."""
        return (
            rule.constrained is None
            and not rule.bound
            and not rule.constraints
            and not (type_code in PRIMITIVE_TYPES or type_code.startswith(_SYSTEM_TYPES))
            and type_code not in rule.type_profiles
            and type_code not in ("Reference", "Extension")
            and not self._is_a(type_code, "Quantity")
        )

    def _skips(self, layout: Layout, walked: Layout, same_host: bool) -> frozenset[str]:
        """The children of ``layout`` the same as ``walked``'s (the base's at this place): all
        there is to find in them the base walk found. An extension's place is part of what is
        checked (extension_context): the same only on a host of the same type."""
        key = (id(layout), id(walked), same_host)  # layouts live as long as self
        found = self._skip_sets.get(key)
        if found is None:
            found = self._skip_sets[key] = frozenset(
                name
                for name, child in layout.children.items()
                if name in walked.children
                and self._same(child, walked.children[name])
                and (same_host or name not in ("extension", "modifierExtension"))
            )
        return found

    def layout_of(self, rule: Rule, type_code: str | None) -> Layout:
        """The layout of what may stand inside ``rule`` holding a ``type_code``."""
        plan: Layout | None = rule.plans.get(type_code)
        if plan is None:
            plan = rule.plans[type_code] = self.layout(self.children_of(rule, type_code))
        return plan

    def layout(self, children: dict[str, Rule]) -> Layout:
        layout = self._layouts.get(id(children))
        if layout is None or layout.children is not children:
            layout = self._layouts[id(children)] = Layout(children)
        return layout

    def child(self, children: dict[str, Rule], key: str) -> tuple[Rule | None, str | None]:
        """The rule a JSON name belongs to in ``children`` (and its choice type, if one)."""
        return self.layout(children).child(key)

    def walked_as(self, extension_slice: Rule, element: Rule, value: dict[str, Any]) -> bool:
        """Whether walking the children of ``value`` as ``extension_slice`` (an extension's slice
        in a profile) finds only what walking them as any extension of ``element`` (the
        element the base walk saw it in) found at the same place: the two define the same
        children (the same checks below them, paths aside) but for fixed or pattern values of
        the slice's that ``value`` has, and nothing in ``value`` is checked by where it stands
        (an extension's context, an ``_x`` part, a resource)."""
        key = (id(extension_slice), id(element))  # rules live as long as self
        if key not in self._same_walks:
            self._same_walks[key] = self._same_names(extension_slice, element)
        same = self._same_walks[key]
        if same is None:
            return False
        names, values = same
        if not (value.keys() <= names and _placeless(value)):
            return False
        for name, kind, expected in values:
            found = value.get(name)
            if not (found == expected if kind == "fixed" else matches_pattern(found, expected)):
                return False
        return True

    def _same_names(self, extension_slice: Rule, element: Rule) -> _SameWalk | None:
        """The JSON names the two walk alike, and the slice's own fixed and pattern values (by
        element name; see walked_as)."""
        mine = self.children_of(extension_slice, "Extension")
        theirs = self.children_of(element, "Extension")
        if mine.keys() != theirs.keys():
            return None
        values: list[tuple[str, str, Any]] = []
        for name, child in mine.items():
            shape = _shape(child, child.path.rsplit(".", 1)[0])
            other = _shape(theirs[name], theirs[name].path.rsplit(".", 1)[0])
            if shape is None or (shape != other and not _adds_a_value(child, shape, other)):
                return None
            if shape != other and child.constrained is not None:
                values.append((name, *child.constrained))
        layout = self.layout(theirs)
        names = frozenset({*layout.children, *layout.choices}) - {"extension", "modifierExtension"}
        return names, tuple(values)


_SameWalk = tuple[frozenset[str], tuple[tuple[str, str, Any], ...]]


def _adds_a_value(child: Rule, shape: tuple[Any, ...], other: tuple[Any, ...] | None) -> bool:
    """``child`` (a primitive, one JSON name) checks what ``other``'s rule checks, and a fixed
    or pattern value besides (a slice's ``url``): shape[5] is that value."""
    return (
        other is not None
        and other[5] == "null"
        and child.constrained is not None
        and len(child.type_codes) == 1
        and is_primitive(child.type_codes[0])
        and shape[:5] + shape[6:] == other[:5] + other[6:]
    )


def _shape(rule: Rule, prefix: str) -> tuple[Any, ...] | None:
    """What the walk checks with ``rule`` and below it, its path relative to ``prefix``; None
    for what the walk checks by the path or the rule itself (slices, type profiles, a
    contentReference, a backbone element's invariants, which FHIRPath types by its path).
    The same parts as layout.Signatures compares, but for the path."""
    definition = rule.definition
    if (
        not rule.path.startswith(prefix)
        or "contentReference" in definition
        or rule.slices
        or rule.type_profiles
        or not rule.type_codes
        or {"BackboneElement", "Element"} & set(rule.type_codes)
    ):
        return None
    children = []
    for name, child in rule.children.items():
        shape = _shape(child, prefix)
        if shape is None:
            return None
        children.append((name, shape))
    return (
        rule.path[len(prefix) :],
        *checked_parts(rule),
        json.dumps(rule.slicing, sort_keys=True),  # not read without slices, compared anyway
        tuple(children),
    )


def _placeless(value: dict[str, Any]) -> bool:
    """Nothing inside ``value`` is checked by where it stands: no extension (its context), no
    ``_x`` part, no resource, no list in a list."""
    for key, item in value.items():
        if key[:1] == "_" or key in ("extension", "modifierExtension", "resourceType"):
            return False
        if isinstance(item, dict):
            if not _placeless(item):
                return False
        elif isinstance(item, list):
            for part in item:
                if isinstance(part, list) or (isinstance(part, dict) and not _placeless(part)):
                    return False
    return True
