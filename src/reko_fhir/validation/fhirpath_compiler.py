"""FHIRPath invariants compiled to Python closures over FHIR JSON, with fhirpathpy's verdicts.

fhirpathpy walks its parse tree on every evaluation (hundreds of µs an invariant); here each
expression is parsed once (a recursive-descent parser for the part of FHIRPath the core and
reko invariants use) and turned into nested closures that work on the JSON lists and dicts
directly. An expression outside that part does not compile (:func:`compile_invariant` gives
None) and is evaluated as before; a compiled one meets, at run time, something whose result it
is not sure to give as fhirpathpy would (an ``_x`` beside ``x``, a choice element, a date, a
decimal, several items where one is wanted) and raises :class:`Fallback`: the caller then
evaluates it the old way. So nothing is decided differently, and nothing becomes undecided;
``tests/validation/test_fhirpath_compiler.py`` compares both on every fixture node.

Semantics followed (fhirpathpy's, which are FHIRPath's where it matters here):
https://hl7.org/fhirpath/N1/#operator-precedence, #boolean-logic (three-valued ``and``, ``or``,
``xor``, ``implies``, both sides always evaluated), #equality (empty side: empty), #existence
(``exists``, ``empty``, ``all``, ``count``), #filtering-and-projection (``where``, ``select``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from fhirpathpy.models import models

from reko_fhir.validation.fhirpath_parser import Unsupported, parse

Items = list[Any]
# (input items, %resource, %rootResource) -> result items
Node = Callable[[Items, Any, Any], Items]
Invariant = Callable[[Any, Any, Any], Items]


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """This instance is outside what the compiled form decides: evaluate it the old way."""


# The stems of choice elements anywhere in R4 (``value`` of value[x]): fhirpathpy finds
# ``valueString`` under ``value`` when it knows the type; navigating such a name is decided here
# only where no key of that stem is present.
_CHOICE_KEYS: dict[str, frozenset[str]] = {}
for _path, _types in models["r4"]["choiceTypePaths"].items():
    _stem = _path.rsplit(".", 1)[-1]
    _CHOICE_KEYS[_stem] = _CHOICE_KEYS.get(_stem, frozenset()) | {
        f"{prefix}{_stem}{t}" for t in _types for prefix in ("", "_")
    }
_DATE_LIKE = re.compile(r"\d{4}|T?\d\d:")
_DIGITS_OR_T = frozenset("0123456789T")

# -- navigation ---------------------------------------------------------------------------------


def _member(name: str) -> Node:
    hidden = "_" + name
    # fhirpathpy, typed, finds valueString for value (the choice's types by its model)
    choices = _CHOICE_KEYS.get(name, frozenset())
    if name == "length":
        raise Unsupported("length")  # fhirpathpy: len() of a string

    def member(items: Items, resource: Any, root: Any) -> Items:
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
        return found

    member.spec = (name, hidden, choices)  # type: ignore[attr-defined]  # for _fused
    return member


def _boolean(items: Items) -> bool | None:
    """An operand of and/or/xor/implies: empty, or one boolean (anything else raises there)."""
    if not items:
        return None
    if len(items) == 1 and isinstance(items[0], bool):
        return items[0]
    raise Fallback


def _one(items: Items) -> Any:
    """One string, boolean or integer, compared as fhirpathpy compares them; else Fallback."""
    if len(items) != 1:
        raise Fallback
    value = items[0]
    if isinstance(value, str):
        if value[:1] in _DIGITS_OR_T and _DATE_LIKE.match(value):
            raise Fallback  # typed as a date or time there
        return value
    if isinstance(value, bool | int):
        return value
    raise Fallback


def _literal_string(node: Node) -> str | None:
    """The string a compiled literal gives, when it is one string that is no date."""
    value = node([], None, None) if getattr(node, "literal", False) else None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        text = value[0]
        return None if _DATE_LIKE.match(text) else text
    return None


def _logic(op: str, left: bool | None, right: bool | None) -> Items:
    if op == "and":
        if left is False or right is False:
            return [False]
        return [True] if left is True and right is True else []
    if op == "or":
        if left is True or right is True:
            return [True]
        return [False] if left is False and right is False else []
    if op == "xor":
        return [] if left is None or right is None else [left != right]
    # implies
    if left is False:
        return [True]
    if left is True:
        return [] if right is None else [right]
    return [True] if right is True else []


def _operator(op: str, left: Node, right: Node) -> Node:
    if op in ("and", "or", "xor", "implies"):

        def logic(items: Items, resource: Any, root: Any) -> Items:
            a = _boolean(left(items, resource, root))
            return _logic(op, a, _boolean(right(items, resource, root)))

        return logic
    if op in ("=", "!="):
        same = op == "="
        constant = _literal_string(right)
        if constant is not None:

            def equal_text(items: Items, resource: Any, root: Any) -> Items:
                a = left(items, resource, root)
                if not a:
                    return []
                x = _one(a)
                if type(x) is not str:
                    raise Fallback
                return [(x == constant) is same]

            return equal_text

        def equal(items: Items, resource: Any, root: Any) -> Items:
            a, b = left(items, resource, root), right(items, resource, root)
            if not a or not b:
                return []
            x, y = _one(a), _one(b)
            if type(x) is not type(y):
                raise Fallback
            return [(x == y) is same]

        return equal
    if op in ("<", ">", "<=", ">=", "+"):

        def numbers(items: Items, resource: Any, root: Any) -> Items:
            a, b = left(items, resource, root), right(items, resource, root)
            if not a or not b:
                return []
            x, y = _one(a), _one(b)
            if type(x) is not int or type(y) is not int:
                raise Fallback
            if op == "+":
                return [x + y]
            return [
                x < y if op == "<" else x > y if op == ">" else x <= y if op == "<=" else x >= y
            ]

        return numbers
    raise Unsupported(op)


# -- functions ----------------------------------------------------------------------------------


def _criterion(found: Items) -> bool:
    """where()'s test of one item, as fhirpathpy makes it: empty drops, a boolean decides."""
    if not found:
        return False
    if len(found) == 1 and isinstance(found[0], bool):
        return found[0]
    raise Fallback


def _string_argument(args: list[tuple[Any, ...]]) -> str:
    if len(args) != 1 or args[0][0] != "lit" or len(args[0][1]) != 1:
        raise Unsupported("argument")
    value = args[0][1][0]
    if not isinstance(value, str):
        raise Unsupported("argument")
    return value


def _string(items: Items) -> str:
    if len(items) != 1 or not isinstance(items[0], str):
        raise Fallback  # fhirpathpy raises: undecided there
    return str(items[0])


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
    if name == "length" or _DATE_LIKE.match(text):
        return None
    return name, text


def _keeps(name: str, texts: frozenset[str]) -> Callable[[Any], bool]:
    """``where(name = 'text')``'s test of one item, as the generic closures would decide it;
    with several texts, ``name = 'a' or name = 'b'``'s (each side makes the same checks of
    the same member, so one look decides them all)."""
    hidden, choices = "_" + name, _CHOICE_KEYS.get(name, frozenset())

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
        if type(value) is not str or (value[:1] in _DIGITS_OR_T and _DATE_LIKE.match(value)):
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


def _criterion_keeps(tree: tuple[Any, ...]) -> Callable[[Any], bool] | None:
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
    left, right = _criterion_keeps(tree[2]), _criterion_keeps(tree[3])
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


def _call(name: str, args: list[tuple[Any, ...]]) -> Callable[[Items, Any, Any], Items]:
    if name in ("exists", "where", "all", "select") and len(args) == 1:
        test = _compile(args[0])
        if name == "select":

            def select(items: Items, resource: Any, root: Any) -> Items:
                return [x for item in items for x in test([item], resource, root)]

            return select
        if name == "all":

            def all_(items: Items, resource: Any, root: Any) -> Items:
                for item in items:
                    found = test([item], resource, root)
                    if found == [True] and found[0] is not True:
                        raise Fallback  # 1 counts as true there
                    if found != [True]:
                        return [False]
                return [True]

            return all_
        keep_all = name == "where"
        keeps = _criterion_keeps(args[0])
        if keeps is not None:

            def where_equal(items: Items, resource: Any, root: Any) -> Items:
                kept = []  # a loop: a comprehension costs a function object in Python 3.11
                for item in items:
                    if keeps(item):
                        kept.append(item)
                return kept if keep_all else [bool(kept)]

            where_equal.keeps = (keeps, keep_all)  # type: ignore[attr-defined]  # for _fused
            return where_equal

        def where(items: Items, resource: Any, root: Any) -> Items:
            kept = [item for item in items if _criterion(test([item], resource, root))]
            return kept if keep_all else [bool(kept)]

        return where
    if args and name not in ("startsWith", "contains", "matches", "trace"):
        raise Unsupported(name)
    if name == "exists":
        return _exists
    if name == "empty":
        return lambda items, resource, root: [not items]
    if name == "count":
        return lambda items, resource, root: [len(items)]
    if name == "first":
        return lambda items, resource, root: items[:1]
    if name == "tail":
        return lambda items, resource, root: items[1:]
    if name == "not":

        def not_(items: Items, resource: Any, root: Any) -> Items:
            if len(items) != 1:
                return []
            if not isinstance(items[0], bool):
                raise Fallback
            return [not items[0]]

        return not_
    if name == "trace":
        if len(args) != 1:
            raise Unsupported("trace")
        _string_argument(args)
        return lambda items, resource, root: items
    text = _string_argument(args)
    if name == "startsWith":

        def starts(items: Items, resource: Any, root: Any) -> Items:
            if not items:
                return []
            value = _string(items)
            return [bool(value) and value.startswith(text)]

        return starts
    if name == "contains":
        return lambda items, resource, root: [text in _string(items)] if items else []
    if name == "matches":
        pattern = re.compile(text, re.DOTALL)

        def matches(items: Items, resource: Any, root: Any) -> Items:
            if not items or not text:
                return []
            return [pattern.search(_string(items)) is not None]

        return matches
    raise Unsupported(name)


def _compile(tree: tuple[Any, ...]) -> Node:
    kind = tree[0]
    if kind == "lit":
        constant: Items = tree[1]

        def literal(items: Items, resource: Any, root: Any) -> Items:
            return constant

        literal.literal = True  # type: ignore[attr-defined]
        return literal
    if kind == "var":
        if tree[1] == "$this":
            return lambda items, resource, root: items
        if tree[1] == "%resource":
            return lambda items, resource, root: [resource]
        return lambda items, resource, root: [root]
    if kind == "op":
        return _operator(tree[1], _compile(tree[2]), _compile(tree[3]))
    if kind == "path":
        # A chain a.b.where(…).exists() runs as one loop over its steps, not nested calls.
        steps: list[Node] = []
        while tree[0] == "path":
            step = tree[2]
            steps.append(_member(step[1]) if step[0] == "member" else _call(step[1], step[2]))
            tree = tree[1]
        if tree != ("var", "$this"):
            steps.append(_compile(tree))
        steps.reverse()
        if len(steps) == 1:
            return steps[0]
        fused = _fused(steps)
        if fused is not None:
            return fused

        def chain(items: Items, resource: Any, root: Any) -> Items:
            for step_ in steps:
                items = step_(items, resource, root)
            return items

        return chain
    raise Unsupported(kind)


def _exists(items: Items, resource: Any, root: Any) -> Items:
    return [bool(items)]


def _fused(steps: list[Node]) -> Node | None:
    """The commonest chain, ``a.b.where(x = 'y').where(…).exists()`` (members, then where()
    filters of ``name = 'text'`` tests, then perhaps exists()), as one closure: each step as
    its own closure does it, in the same order (so every Fallback is raised as there), without
    a call per step."""
    members: list[tuple[str, str, frozenset[str]]] = []
    filters: list[Callable[[Any], bool]] = []
    index = 0
    while index < len(steps) and hasattr(steps[index], "spec"):
        members.append(steps[index].spec)  # type: ignore[attr-defined]
        index += 1
    while index < len(steps) and hasattr(steps[index], "keeps"):
        keeps, keep_all = steps[index].keeps  # type: ignore[attr-defined]
        if not keep_all:
            return None  # exists(criterion): not this shape
        filters.append(keeps)
        index += 1
    exists = index < len(steps) and steps[index] is _exists
    if exists:
        index += 1
    if index != len(steps) or not members:
        return None

    def fused(items: Items, resource: Any, root: Any) -> Items:
        for name, hidden, choices in members:  # _member's member()
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
        for keeps in filters:  # _call's where_equal()
            kept = []
            for item in items:
                if keeps(item):
                    kept.append(item)
            items = kept
        return [bool(items)] if exists else items

    return fused


@cache
def compile_invariant(expression: str) -> Invariant | None:
    """``expression`` as a function of (node, %resource, %rootResource) giving its result
    collection, or None when this compiler does not cover it (evaluate it the old way)."""
    try:
        body = _compile(parse(expression))
    except (Unsupported, re.error, IndexError, ValueError):
        return None

    def invariant(node: Any, resource: Any, root: Any) -> Items:
        return body([node], resource, root)

    return invariant
