"""What fhirpathpy lacks for the R4 invariants, done in Python: functions and whole invariants.

fhirpathpy raises on some core invariants and answers others wrongly; left alone, the validator
could only call them undecided. Here:

- FHIRPath functions it does not have, for ``userInvocationTable``: ``resolve()`` (a reference to
  a contained resource, to the container (``#``) or to an entry of the Bundle being validated;
  anything else is not resolvable here and, as the FHIR spec says, adds nothing:
  https://hl7.org/fhir/R4/fhirpath.html#functions), ``htmlChecks()`` (narrative.py) and
  ``hasValue()``.
- Whole invariants, found by key *and* exact expression as in native.py, where fhirpathpy cannot
  be used: dom-3 with contained resources (``as(canonical)`` on several items raises there),
  rng-2 (it compares Quantities as Python dicts: TypeError), inv-1 and mdd-1 (it compares two
  dateTime elements as strings: ``10:00+02:00 >= 09:30+01:00`` is true there), txt-1 and txt-2.
  A check returns True, False, :class:`Undecided` (with why) or None (FHIRPath evaluates it).
  https://hl7.org/fhir/R4/domainresource.html#invs, https://hl7.org/fhir/R4/datatypes.html#Range,
  https://hl7.org/fhir/R4/task.html#invs, https://hl7.org/fhir/R4/medicationdispense.html#invs
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reko_fhir.validation import narrative
from reko_fhir.validation.datetimes import compare

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Undecided:
    """The third verdict: the invariant was neither seen to hold nor to fail, and why.

    Not a boolean: ``if verdict:`` on one raises, so no caller can count it as a pass.
    """

    reason: str

    def __bool__(self) -> bool:
        raise TypeError("an undecided verdict is neither true nor false")


Verdict = bool | Undecided
GapCheck = Callable[[Any], Verdict | None]


@dataclass(frozen=True, slots=True)
class Scope:
    """What resolve() may look in: %rootResource and the Bundle's entries (when there is one)."""

    root: Json
    entry: Callable[[str], Json | None] | None = None
    # ValueSet membership for memberOf(): True, False, or None (the value set cannot tell).
    member: Callable[[Any, str], bool | None] | None = None


SCOPE: ContextVar[Scope | None] = ContextVar("reko_fhirpath_scope", default=None)


# -- functions ----------------------------------------------------------------------------------


def _resolve_one(reference: str, scope: Scope) -> Json | None:
    if reference == "#":
        return scope.root
    if reference.startswith("#"):
        contained = scope.root.get("contained")
        for item in contained if isinstance(contained, list) else []:
            if isinstance(item, dict) and item.get("id") == reference[1:]:
                return item
        return None
    return scope.entry(reference) if scope.entry is not None else None


def resolve(inputs: list[Any]) -> list[Any]:
    """FHIRPath ``resolve()`` on References and reference strings."""
    scope = SCOPE.get()
    found: list[Any] = []
    for item in inputs:
        reference = item.get("reference") if isinstance(item, dict) else item
        if isinstance(reference, str) and scope is not None:
            target = _resolve_one(reference, scope)
            if target is not None:
                found.append(target)
    return found


def html_checks(inputs: list[Any]) -> list[bool]:
    """``htmlChecks()``: txt-1 and txt-2 together on one div."""
    if len(inputs) != 1 or not isinstance(inputs[0], str):
        return []
    problem, content = narrative.problems(inputs[0])
    return [problem is None and content]


def has_value(inputs: list[Any]) -> list[bool]:
    """FHIRPath ``hasValue()``: one primitive with a value."""
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)]


class _NotDecidableError(Exception):
    """memberOf() on a value set this validator cannot expand: the invariant is undecided."""


def member_of(inputs: list[Any], url: str) -> list[bool]:
    """FHIRPath ``memberOf(valueset)`` on a code, Coding, CodeableConcept or Quantity
    (https://hl7.org/fhir/R4/fhirpath.html#functions): empty on an empty input."""
    scope = SCOPE.get()
    if len(inputs) != 1:
        return []
    verdict = scope.member(inputs[0], url) if scope is not None and scope.member else None
    if verdict is None:
        raise _NotDecidableError(f"memberOf('{url}'): the value set cannot be expanded here")
    return [verdict]


FUNCTIONS = {
    "hasValue": {"fn": has_value, "arity": {0: []}},
    "htmlChecks": {"fn": html_checks, "arity": {0: []}},
    "resolve": {"fn": resolve, "arity": {0: []}},
    "memberOf": {"fn": member_of, "arity": {1: ["String"]}},
}


# -- whole invariants ---------------------------------------------------------------------------


def _strings(node: Any) -> Iterator[str]:
    """Every string below ``node`` (FHIRPath ``descendants()``, untyped)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def dom_3(node: Any) -> Verdict | None:
    """Each contained resource is referenced from the resource (``#id``), or refers to it (``#``).

    FHIRPath looks for ``'#'+id`` among ``reference`` values and canonical, uri and url values;
    untyped JSON does not say which strings are uris, so any string equal to ``#id`` counts (a
    code ``#x`` would too: no real instance has one). A contained resource without an id has
    no ``'#'+id`` and is not found unmatched, as in the expression.
    """
    if not isinstance(node, dict):
        return None
    contained = node.get("contained")
    if contained is None or contained == []:
        return True
    if not isinstance(contained, list) or not all(isinstance(c, dict) for c in contained):
        return None
    ids = [c.get("id") for c in contained]
    if not all(i is None or isinstance(i, str) for i in ids):
        return None
    present = set(_strings(node))
    for item, id_ in zip(contained, ids, strict=True):
        if id_ is None or f"#{id_}" in present:
            continue
        if "#" in set(_strings(item)):
            continue  # it refers to its container
        return False
    return True


def _quantity(node: Any) -> tuple[Decimal, tuple[object, object]] | None:
    if not isinstance(node, dict) or not isinstance(node.get("value"), int | float | Decimal):
        return None
    unit = (node.get("system"), node["code"]) if "code" in node else (None, node.get("unit"))
    return Decimal(str(node["value"])), unit


def rng_2(node: Any) -> Verdict | None:
    """``low.empty() or high.empty() or (low <= high)`` for two Quantities of the same unit.

    Two values in different units would need UCUM conversion: undecided, with the units named.
    A comparator on a Range's low or high is forbidden elsewhere (SimpleQuantity, sqty-1).
    """
    if not isinstance(node, dict):
        return None
    low, high = node.get("low"), node.get("high")
    if low is None or high is None:
        return True
    left, right = _quantity(low), _quantity(high)
    if left is None or right is None:
        # One without a value: FHIRPath's comparison of such Quantities is empty, which holds.
        return True if isinstance(low, dict) and isinstance(high, dict) else None
    if left[1] != right[1]:
        return Undecided(
            f"low ({_unit(left[1])}) and high ({_unit(right[1])}) are in different units"
        )
    return left[0] <= right[0]


def _unit(unit: tuple[object, object]) -> str:
    system, code = unit
    return f"{system}#{code}" if system else str(code)


def _later_or_same(later: str, earlier: str) -> GapCheck:
    """``<later>.exists().not() or <earlier>.exists().not() or <later> >= <earlier>``."""

    def check(node: Any) -> Verdict | None:
        if not isinstance(node, dict):
            return None
        first, second = node.get(later), node.get(earlier)
        if first is None or second is None:
            return True
        if not isinstance(first, str) or not isinstance(second, str):
            return None
        try:
            order = compare(first, second)
        except ValueError:
            return None  # a malformed dateTime: an issue of its own; FHIRPath may say more
        return order is None or order >= 0  # None: the precisions leave it open; empty holds

    return check


_DOM_3_R4 = (
    "contained.where((('#'+id in (%resource.descendants().reference"
    " | %resource.descendants().as(canonical) | %resource.descendants().as(uri)"
    " | %resource.descendants().as(url))) or descendants().where(reference = '#').exists()"
    " or descendants().where(as(canonical) = '#').exists()"
    " or descendants().where(as(canonical) = '#').exists()).not())"
    ".trace('unmatched', id).empty()"
)
# The wording of later versions (and of profiles built on them): the same rule.
_DOM_3_LATER = (
    "contained.where(((id.exists() and ('#'+id in (%resource.descendants().reference"
    " | %resource.descendants().as(canonical) | %resource.descendants().as(uri)"
    " | %resource.descendants().as(url)))) or descendants().where(reference = '#').exists()"
    " or descendants().where(as(canonical) = '#').exists()"
    " or descendants().where(as(uri) = '#').exists()).not()).trace('unmatched', id).empty()"
)

_CHECKS: dict[tuple[str, str], GapCheck] = {
    ("dom-3", _DOM_3_R4): dom_3,
    ("dom-3", _DOM_3_LATER): dom_3,
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): rng_2,
    (
        "inv-1",
        "lastModified.exists().not() or authoredOn.exists().not() or lastModified >= authoredOn",
    ): _later_or_same("lastModified", "authoredOn"),
    (
        "mdd-1",
        "whenHandedOver.empty() or whenPrepared.empty() or whenHandedOver >= whenPrepared",
    ): _later_or_same("whenHandedOver", "whenPrepared"),
    ("txt-1", "htmlChecks()"): narrative.txt_1,
    ("txt-2", "htmlChecks()"): narrative.txt_2,
}


def gap_check(key: str, expression: str) -> GapCheck | None:
    """The Python check for invariant ``key`` with exactly this expression, if there is one."""
    return _CHECKS.get((key, expression))


def gap_invariants() -> list[tuple[str, str]]:
    """Every (key, expression) decided here."""
    return list(_CHECKS)
