"""What the compiled FHIRPath closures share (fhirpath_compiler.py): member navigation, the
``where(name = 'text')`` filters, and the commonest chain of them run as one closure.

Each step decides only where fhirpathpy would give the same result on the JSON, and raises
:class:`Fallback` elsewhere (an ``_x`` beside ``x``, a choice element, a date-like text, a
null in a list): the caller then evaluates the expression the old way.
https://hl7.org/fhirpath/N1/#path-selection, #filtering-and-projection
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fhirpathpy.models import models

Items = list[Any]
# (input items, %resource, %rootResource) -> result items
Node = Callable[[Items, Any, Any], Items]
# A member step as (name, its `_name`, the JSON names of a choice element of that stem)
Member = tuple[str, str, frozenset[str]]


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """This instance is outside what the compiled form decides: evaluate it the old way."""


# The stems of choice elements anywhere in R4 (``value`` of value[x]): fhirpathpy finds
# ``valueString`` under ``value`` when it knows the type; navigating such a name is decided here
# only where no key of that stem is present.
CHOICE_KEYS: dict[str, frozenset[str]] = {}
for _path, _types in models["r4"]["choiceTypePaths"].items():
    _stem = _path.rsplit(".", 1)[-1]
    CHOICE_KEYS[_stem] = CHOICE_KEYS.get(_stem, frozenset()) | {
        f"{prefix}{_stem}{t}" for t in _types for prefix in ("", "_")
    }
DATE_LIKE = re.compile(r"\d{4}|T?\d\d:")
DIGITS_OR_T = frozenset("0123456789T")


def member_spec(name: str) -> Member:
    return name, "_" + name, CHOICE_KEYS.get(name, frozenset())


def members(items: Items, specs: tuple[Member, ...]) -> Items:
    """``items.a.b…``: each member step of ``specs`` in turn (one step compiled alone, or the
    members of a fused chain)."""
    for name, hidden, choices in specs:
        found: Items = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if hidden in item or (choices and not choices.isdisjoint(item)):
                raise Fallback
            value = item.get(name)
            if value is None:
                continue
            if isinstance(value, list):
                if None in value:
                    raise Fallback
                found.extend(value)
            else:
                found.append(value)
        items = found
    return items


def _member_equals(tree: tuple[Any, ...]) -> tuple[str, str] | None:
    """(name, text) for a criterion ``name = 'text'`` (the commonest: ``system = '…'``)."""
    if tree[0] != "op" or tree[1] != "=":
        return None
    left, right = tree[2], tree[3]
    if left[0] != "path" or left[1] != ("var", "$this") or left[2][0] != "member":
        return None
    if right[0] != "lit" or len(right[1]) != 1 or not isinstance(right[1][0], str):
        return None
    name, text = left[2][1], right[1][0]
    if name == "length" or DATE_LIKE.match(text):
        return None
    return name, text


def _keeps(name: str, texts: frozenset[str]) -> Callable[[Any], bool]:
    """``where(name = 'text')``'s test of one item, as the generic closures would decide it;
    with several texts, ``name = 'a' or name = 'b'``'s (each side makes the same checks of
    the same member, so one look decides them all)."""
    hidden, choices = "_" + name, CHOICE_KEYS.get(name, frozenset())

    def keeps(item: Any) -> bool:
        if not isinstance(item, dict):
            return False  # no children: empty, so dropped
        if hidden in item or (choices and not choices.isdisjoint(item)):
            raise Fallback
        value = item.get(name)
        if isinstance(value, list):
            if not value:
                return False
            if len(value) != 1 or value[0] is None:
                raise Fallback
            value = value[0]
        if value is None:
            return False
        if type(value) is not str or (value[:1] in DIGITS_OR_T and DATE_LIKE.match(value)):
            raise Fallback
        return value in texts

    return keeps


def _alternatives(tree: tuple[Any, ...]) -> tuple[str, frozenset[str]] | None:
    """(name, texts) for ``name = 'a'``, or an ``or`` of such tests all of one member."""
    simple = _member_equals(tree)
    if simple is not None:
        return simple[0], frozenset({simple[1]})
    if tree[0] != "op" or tree[1] != "or":
        return None
    left, right = _alternatives(tree[2]), _alternatives(tree[3])
    if left is None or right is None or left[0] != right[0]:
        return None
    return left[0], left[1] | right[1]


def criterion_keeps(tree: tuple[Any, ...]) -> Callable[[Any], bool] | None:
    """where()'s test of one item for ``name = 'text'``, or an ``and``/``or`` of such tests.

    An empty comparison (no such member) and a false one both drop the item, so two-valued
    logic keeps what the three-valued one keeps: ``or`` keeps an item when a side is true,
    ``and`` when both are. Both sides are evaluated, as fhirpathpy does (either may fall back).
    """
    alternatives = _alternatives(tree)
    if alternatives is not None:
        return _keeps(*alternatives)
    if tree[0] != "op" or tree[1] not in ("and", "or"):
        return None
    left, right = criterion_keeps(tree[2]), criterion_keeps(tree[3])
    if left is None or right is None:
        return None
    if tree[1] == "or":

        def either(item: Any) -> bool:
            a = left(item)
            return right(item) or a

        return either

    def both(item: Any) -> bool:
        a = left(item)
        return right(item) and a

    return both


def kept(items: Items, tests: tuple[Callable[[Any], bool], ...]) -> Items:
    """The items each test keeps, in turn: ``where(name = 'text' …)`` steps."""
    for keeps in tests:
        found = []  # a loop: a comprehension costs a function object in Python 3.11
        for item in items:
            if keeps(item):
                found.append(item)
        items = found
    return items


def exists(items: Items, resource: Any, root: Any) -> Items:
    return [bool(items)]


def fused(steps: list[Node]) -> Node | None:
    """The commonest chain, ``a.b.where(x = 'y').where(…).exists()`` (members, then where()
    filters of ``name = 'text'`` tests, then perhaps exists()), as one closure: each step by
    the same function as alone (members(), kept()), in the same order, so every Fallback is
    raised as there, with one call for the members and one for the filters, not a closure
    call per step."""
    specs: list[Member] = []
    filters: list[Callable[[Any], bool]] = []
    index = 0
    while index < len(steps) and hasattr(steps[index], "spec"):
        specs.append(steps[index].spec)  # type: ignore[attr-defined]
        index += 1
    while index < len(steps) and hasattr(steps[index], "keeps"):
        keeps, keep_all = steps[index].keeps  # type: ignore[attr-defined]
        if not keep_all:
            return None  # exists(criterion): not this shape
        filters.append(keeps)
        index += 1
    ends_in_exists = index < len(steps) and steps[index] is exists
    if ends_in_exists:
        index += 1
    if index != len(steps) or not specs:
        return None

    member_steps, filter_steps = tuple(specs), tuple(filters)

    def chain(items: Items, resource: Any, root: Any) -> Items:
        items = members(items, member_steps)
        if filter_steps:
            items = kept(items, filter_steps)
        return [bool(items)] if ends_in_exists else items

    return chain
