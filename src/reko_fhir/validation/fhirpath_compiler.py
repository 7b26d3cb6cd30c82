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

from reko_fhir.validation.fhirpath_parser import Unsupported, parse
from reko_fhir.validation.fhirpath_steps import (
    DATE_LIKE,
    DIGITS_OR_T,
    Fallback,
    Items,
    Node,
    criterion_keeps,
    exists,
    fused,
    kept,
    member_spec,
    members,
)

__all__ = ["Fallback", "Invariant", "compile_invariant"]
Invariant = Callable[[Any, Any, Any], Items]

# -- navigation ---------------------------------------------------------------------------------


def _member(name: str) -> Node:
    if name == "length":
        raise Unsupported("length")  # fhirpathpy: len() of a string
    spec = member_spec(name)
    alone = (spec,)

    def member(items: Items, resource: Any, root: Any) -> Items:
        return members(items, alone)

    member.spec = spec  # type: ignore[attr-defined]  # for fused()
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
        if value[:1] in DIGITS_OR_T and DATE_LIKE.match(value):
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
        return None if DATE_LIKE.match(text) else text
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
        keeps = criterion_keeps(args[0])
        if keeps is not None:
            tests = (keeps,)

            def where_equal(items: Items, resource: Any, root: Any) -> Items:
                found = kept(items, tests)
                return found if keep_all else [bool(found)]

            where_equal.keeps = (keeps, keep_all)  # type: ignore[attr-defined]  # for fused()
            return where_equal

        def where(items: Items, resource: Any, root: Any) -> Items:
            kept = [item for item in items if _criterion(test([item], resource, root))]
            return kept if keep_all else [bool(kept)]

        return where
    if args and name not in ("startsWith", "contains", "matches", "trace"):
        raise Unsupported(name)
    if name == "exists":
        return exists
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
        chained = fused(steps)
        if chained is not None:
            return chained

        def chain(items: Items, resource: Any, root: Any) -> Items:
            for step_ in steps:
                items = step_(items, resource, root)
            return items

        return chain
    raise Unsupported(kind)


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
