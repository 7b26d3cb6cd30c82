"""What the validator's walk looks up at each element, built once per rule and kept:
the children that may stand inside it, their layout, and the walk plan (layout.py) for a
rule, a type and the base rule walked before it.

https://hl7.org/fhir/R4/profiling.html#snapshot (a profile's elements overlay its types')
"""

from __future__ import annotations

from collections.abc import Callable

from reko_fhir.validation.compiled import Rule
from reko_fhir.validation.definitions import CORE_BASE
from reko_fhir.validation.layout import Layout, Signatures, WalkPlan, single_type
from reko_fhir.validation.primitives import PRIMITIVE_TYPES

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
