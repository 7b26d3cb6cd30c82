"""What the walker looks up for each element, found once per profile (validator.py).

:class:`Layout`: for one set of children (an element's own, overlaid on its type's), which rule
a JSON name belongs to (choice names such as ``valueQuantity`` too), the definition's order, and
the children that say something when absent (a minimum, slices).

:class:`Signatures`: whether two rules check the same (the same definition wherever the walk
reads it, below them too). A profile leaves most elements as the base type has them; walking
those again after the base finds the same issues, which the validator drops as repeats anyway,
so it skips them (https://hl7.org/fhir/R4/profiling.html#snapshot: a snapshot repeats the base's
element definitions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reko_fhir.validation.compiled import Rule
from reko_fhir.validation.primitives import PRIMITIVE_TYPES, checker


class Layout:
    """What the walker looks up in one children dict, found once: which rule a JSON name
    (``valueQuantity`` too) belongs to, the definition's order, what is checked when absent."""

    __slots__ = ("always", "children", "choices", "order")

    def __init__(self, children: dict[str, Rule]) -> None:
        self.children = children
        self.order = {name: index for index, name in enumerate(children)}
        self.always = frozenset(name for name, r in children.items() if r.min > 0 or r.slices)
        self.choices: dict[str, tuple[Rule, str]] = {}
        for rule in children.values():  # the first rule naming a JSON name wins, as before
            if rule.name.endswith("[x]"):
                stem = rule.name[:-3]
                for code in rule.type_codes:
                    self.choices.setdefault(stem + code[:1].upper() + code[1:], (rule, code))

    def child(self, key: str) -> tuple[Rule | None, str | None]:
        found = self.children.get(key)
        if found is not None:
            return found, None
        return self.choices.get(key, (None, None))


def single_type(rule: Rule) -> str:
    """The type of a rule's values when it has one code (a backbone element: none)."""
    codes = rule.type_codes
    return codes[0] if codes else "BackboneElement"


_UNBOUNDED = 1 << 62  # no max ("*")
# (rule, format checks by type, base rule, slices or places, children-only types, min, max)
Step = tuple[Rule, Any, "Rule | None", bool, frozenset[str], int, int]


def checked_parts(rule: Rule) -> tuple[Any, ...]:
    """What the walk checks with ``rule`` itself (not its path, slicing or children): two rules
    with the same parts check a value alike. Its sixth part (index 5 after a path) is the
    ``constrained`` JSON."""
    return (
        rule.name,
        rule.min,
        rule.max,
        json.dumps(rule.types, sort_keys=True),
        json.dumps(rule.constrained, sort_keys=True),
        json.dumps(rule.bounds, sort_keys=True),
        rule.max_length,
        tuple(rule.min_lengths),
        tuple(rule.bound),
        tuple(rule.constraints),
        rule.definition.get("short"),
        rule.slice_name,
    )


class WalkPlan:
    """What the walker does with each JSON name inside one element, found once for a rule, a
    type and the base rule walked before it (``walked``'s layout; None on the base walk):
    ``keys[name]`` is (element name, type, whether the base walk gave it another rule or type),
    or None for a name the base walk checked as the profile would (``skip``); a name not in
    ``keys`` is unknown (or ``_x``, ``resourceType``). ``plain[name][type]``: for a primitive
    with nothing to check but its format (no fixed value, limits, binding or invariant), that
    check (primitives.checker), which is all the walk's _value would do with it.
    ``children_only(rule, type)``: whether a complex value of ``rule`` has nothing to check
    but its children and its type's invariants (WalkPlans.children_only)."""

    __slots__ = (
        "always",
        "arrays",
        "inert",
        "keys",
        "layout",
        "plain",
        "skip",
        "steps",
        "walked",
    )

    def __init__(
        self,
        layout: Layout,
        walked: Layout | None,
        skip: frozenset[str],
        children_only: Callable[[Rule, str], bool],
    ) -> None:
        self.layout, self.walked, self.skip = layout, walked, skip
        self.always = layout.always - skip
        self.keys: dict[str, tuple[str, str, bool] | None] = {}
        self.plain: dict[str, dict[str, Callable[[object], str | None]]] = {}
        # The JSON names whose values are arrays (the others are single values)
        self.arrays: set[str] = set()
        names = [(name, (child, None)) for name, child in layout.children.items()]
        for key, (child, choice) in names + list(layout.choices.items()):
            if key in self.keys:
                continue
            if child.name in skip:
                self.keys[key] = None
                continue
            type_of = choice or single_type(child)
            other_ok = True
            if walked is not None:
                other, other_choice = walked.child(key)
                other_ok = (
                    other is not None
                    and other.name == child.name
                    and (other_choice or single_type(other)) == type_of
                )
            self.keys[key] = (child.name, type_of, not other_ok)
            if child.repeats:
                self.arrays.add(key)
            if _format_only(child, type_of):
                self.plain.setdefault(child.name, {})[type_of] = checker(type_of)
        # By element name: (rule, format checks by type, the base's rule here, whether slices or
        # an extension's place are to check, the complex types walked as children alone, the
        # least and most values allowed), the walk's loop reads once per name.
        self.steps: dict[str, Step] = {
            name: (
                child,
                self.plain.get(name),
                walked.children.get(name) if walked is not None else None,
                bool(child.slices) or name in ("extension", "modifierExtension"),
                frozenset(code for code in child.type_codes if children_only(child, code)),
                child.min,
                _UNBOUNDED if child.max is None else child.max,
            )
            for name, child in layout.children.items()
        }
        # Nothing for the walk to find here that the base walk has not: every name it knows
        # is the base's, checked alike, and it knows no other (no `unknown element` of its own)
        self.inert = (
            walked is not None
            and not self.always
            and all(entry is None for entry in self.keys.values())
            and self.keys.keys() == WalkPlan._known(walked)
        )

    @staticmethod
    def _known(layout: Layout) -> set[str]:
        return {*layout.children, *layout.choices}


def _format_only(rule: Rule, type_code: str) -> bool:
    """A primitive value of ``rule`` has only its format to check (validator._value)."""
    primitive = type_code in PRIMITIVE_TYPES or type_code.startswith("http://hl7.org/fhirpath/")
    return (
        primitive
        and rule.constrained is None
        and not rule.has_limits
        and not rule.bound
        and not rule.constraints
    )


class Signatures:
    """An interned number for each rule's checks, None for a rule never skipped (slices,
    contentReference, which may loop)."""

    def __init__(self) -> None:
        self._signatures: dict[int, int | None] = {}  # by id() of a rule kept by the validator
        self._interned: dict[tuple[Any, ...], int] = {}

    def same(self, rule: Rule, other: Rule) -> bool:
        """Whether two rules check the same: same definition where the walk reads it, below
        them too (the types' own children come with the type codes)."""
        mine = self.signature(rule)
        return mine is not None and mine == self.signature(other)

    def signature(self, rule: Rule) -> int | None:
        if id(rule) in self._signatures:
            return self._signatures[id(rule)]
        self._signatures[id(rule)] = None  # a cycle (contentReference) is never the same
        definition = rule.definition
        parts: list[Any] = []
        if "contentReference" not in definition and rule.slicing is None and not rule.slices:
            children = [(name, self.signature(child)) for name, child in rule.children.items()]
            if all(signature is not None for _, signature in children):
                parts = [rule.path, *checked_parts(rule), tuple(children)]
        signature = self._interned.setdefault(tuple(parts), len(self._interned)) if parts else None
        self._signatures[id(rule)] = signature
        return signature
