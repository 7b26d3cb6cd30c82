"""The most evaluated FHIR R4 core invariants, decided in Python with fhirpathpy's verdicts.

Evaluating FHIRPath through fhirpathpy is most of validation time, and a handful of core
invariants run on every resource or on every item of a common element. Each check here stands
for one invariant, found by its key *and* its exact expression text: a profile that carries
another expression under the same key is evaluated through FHIRPath as before.

A check returns True (the invariant holds), False (it does not: an issue) or None (not decided
here: evaluate the FHIRPath). It decides only where it gives what fhirpathpy's evaluation gives,
``[True]`` or ``[False]`` (or, for per-1 and ref-1, whose FHIRPath can be empty, ``[]``: that
holds too, and True stands for it); anything it is not sure of (say a collection fhirpathpy
would reject with an error) is left to fhirpathpy. ``tests/validation/test_native_invariants.py``
compares both on every fixture and on generated instances.

per-1 compares two dateTimes. fhirpathpy does not type the primitives of JSON it navigates, so
``start <= end`` is a comparison of strings there (``'2024-05' <= '2024'`` is false, though the
precisions differ); the check follows FHIRPath on dateTimes (datetimes.py), which is what
fhirpathpy gives for ``start.toDateTime() <= end.toDateTime()``: the tests compare with that.

The invariants: https://hl7.org/fhir/R4/domainresource.html#invs (dom-2 … dom-6),
https://hl7.org/fhir/R4/bundle.html#invs (bdl-5, bdl-8), https://hl7.org/fhir/R4/careplan.html#invs
(cpl-3), https://hl7.org/fhir/R4/consent.html#invs (ppc-1 … ppc-5),
https://hl7.org/fhir/R4/organization.html#invs (org-1); on every element of a data type
(datatypes.py): https://hl7.org/fhir/R4/datatypes.html#Period (per-1), #Quantity (qty-3),
#ContactPoint (cpt-2), https://hl7.org/fhir/R4/references.html#Reference (ref-1).
FHIRPath semantics:
https://hl7.org/fhirpath/N1/ (member navigation on JSON, ``empty()``, ``exists()``,
``count()``, three-valued ``and``/``or``/``implies``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirpathpy.models import models

from reko_fhir.validation.datetimes import compare

NativeCheck = Callable[[Any], bool | None]
_MODEL = models["r4"]


class _UndecidedError(Exception):
    """The instance is outside what a check decides: FHIRPath evaluates it."""


def children(items: list[Any], name: str) -> list[Any]:
    """FHIRPath ``items.name`` on FHIR JSON, as fhirpathpy navigates it.

    The values under ``name`` of every object in ``items``, a JSON array giving its items, then
    those under ``_name`` (a primitive's id and extensions: fhirpathpy adds them as items of
    their own). A null or ``[]`` under a name gives nothing (a null inside an array is an
    item); non-objects have no children. fhirpathpy
    looks under other names (``codeCodeableConcept``) only for a choice element; the names
    asked for here are choices only on an object whose ``resourceType`` says so
    (``DeviceRequest.code``): that is left to it.
    """
    found: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if "resourceType" in item:
            path = f"{item['resourceType']}.{name}" if item["resourceType"] else f"_.{name}"
            if _MODEL["pathsDefinedElsewhere"].get(path, path) in _MODEL["choiceTypePaths"]:
                raise _UndecidedError
        for value in (item.get(name), item.get("_" + name)):
            if isinstance(value, list):
                found.extend(value)
            elif value is not None:
                found.append(value)
    return found


def _path(node: Any, *names: str) -> list[Any]:
    """``node.a.b…`` from the JSON object a constraint is evaluated on."""
    if not isinstance(node, dict):
        raise _UndecidedError
    items: list[Any] = [node]
    for name in names:
        items = children(items, name)
    return items


def _decided(check: Callable[[Any], bool]) -> NativeCheck:
    def decide(node: Any) -> bool | None:
        try:
            return check(node)
        except _UndecidedError:
            return None

    return decide


def _shortcut(quick: Callable[[dict[str, Any]], bool], check: Callable[[Any], bool]) -> NativeCheck:
    """``check``, answered True at once where ``quick`` (a look at one object's keys) says
    the full check would give True: these run on every resource and Reference."""
    full = _decided(check)

    def decide(node: Any) -> bool | None:
        if type(node) is dict and quick(node):
            return True
        return full(node)

    return decide


def _no_contained(node: dict[str, Any]) -> bool:
    # No contained resources: dom-2..dom-5 navigate ``contained`` first and find nothing
    # (``<Type>.contained`` is no choice element, so children() would not refuse it).
    return "contained" not in node and "_contained" not in node


def _plain_reference(node: dict[str, Any]) -> bool:
    # ref-1 holds for a Reference with no reference or one that is no '#' string, as _ref_1
    # decides; with a _reference or a resourceType it is left to _ref_1.
    if "_reference" in node or "resourceType" in node:
        return False
    found = node.get("reference")
    return found is None or (type(found) is str and found[:1] != "#")


# -- DomainResource ---------------------------------------------------------------------------
# dom-2..dom-6 are checked on every resource (twice: its base type and its profile); dom-2..dom-5
# hold trivially without contained resources.


def _dom_2(node: Any) -> bool:
    # contained.contained.empty(): no contained resource has contained resources of its own.
    return not _path(node, "contained", "contained")


def _dom_3(node: Any) -> bool:
    # contained.where(<is referenced>.not()).trace('unmatched', id).empty(): without contained
    # resources, where() has nothing to filter, trace() passes the empty collection on and
    # empty() is true; %resource and the condition are never evaluated. With contained
    # resources the condition (descendants(), as(), the '#' forms) is left to FHIRPath.
    if _path(node, "contained"):
        raise _UndecidedError
    return True


def _dom_4(node: Any) -> bool:
    # contained.meta.versionId.empty() and contained.meta.lastUpdated.empty(): both sides are
    # booleans (empty() never gives an empty collection), so 'and' is Python's.
    versions = _path(node, "contained", "meta", "versionId")
    updated = _path(node, "contained", "meta", "lastUpdated")
    return not versions and not updated


def _dom_5(node: Any) -> bool:
    # contained.meta.security.empty(): no contained resource carries security labels.
    return not _path(node, "contained", "meta", "security")


def _dom_6(node: Any) -> bool:
    # text.`div`.exists(): the narrative has a div; any item counts, an empty string or a
    # _div (extensions only) as much as XHTML, as fhirpathpy counts them.
    return bool(_path(node, "text", "div"))


# -- Bundle.entry -----------------------------------------------------------------------------


def _bdl_5(node: Any) -> bool:
    # resource.exists() or request.exists() or response.exists(): booleans, so 'or' is Python's.
    found = [_path(node, name) for name in ("resource", "request", "response")]
    return any(found)


def _bdl_8(node: Any) -> bool:
    # fullUrl.exists() implies fullUrl.contains('/_history/').not(): no fullUrl, true; one
    # string, true unless it contains '/_history/'. fhirpathpy evaluates both sides of implies,
    # and contains() on several items or on a non-string is its error: left to it.
    found = _path(node, "fullUrl")
    if not found:
        return True
    if len(found) != 1 or not isinstance(found[0], str):
        raise _UndecidedError
    return "/_history/" not in found[0]


# -- CarePlan.activity, Organization ----------------------------------------------------------


def _cpl_3(node: Any) -> bool:
    # detail.empty() or reference.empty(): an activity is not both a detail and a reference.
    return not _path(node, "detail") or not _path(node, "reference")


def _org_1(node: Any) -> bool:
    # (identifier.count() + name.count()) > 0: count() counts every item, so a name with a
    # _name (extensions) counts twice, as in fhirpathpy; only the sum's sign matters here.
    return len(_path(node, "identifier")) + len(_path(node, "name")) > 0


# -- Consent ----------------------------------------------------------------------------------


def _ppc_1(node: Any) -> bool:
    # policy.exists() or policyRule.exists()
    policy, rule = _path(node, "policy"), _path(node, "policyRule")
    return bool(policy) or bool(rule)


def _ppc(code: str) -> Callable[[Any], bool]:
    """ppc-2 … ppc-5: ``patient.exists() or scope.coding.where(system='something' and
    code='<code>').exists().not()``."""

    def check(node: Any) -> bool:
        patient, codings = _path(node, "patient"), _path(node, "scope", "coding")
        matched = False
        for coding in codings:
            systems, codes = children([coding], "system"), children([coding], "code")
            # where() keeps a coding only when its criterion is true. '=' with an empty side is
            # empty and 'and' with an empty side is never true, so a coding without a system
            # or a code is dropped; one string each compares as Python strings. Anything else
            # (several items, numbers, objects) is left to fhirpathpy, which may raise.
            if any(len(v) > 1 or (v and not isinstance(v[0], str)) for v in (systems, codes)):
                raise _UndecidedError
            matched = matched or (systems == ["something"] and codes == [code])
        # Both sides of 'or' are booleans (exists() and not() of a boolean never give empty),
        # and both are evaluated before 'or': the codings are looked at even with a patient.
        return bool(patient) or not matched

    return check


# -- data types: Period, Reference, Quantity, ContactPoint ------------------------------------


def _primitive(node: Any, name: str) -> str | None:
    """The string under ``name``, None without a value; anything else is not decided here
    (nor is a ``_name`` that is not the object of the value's id and extensions)."""
    if not isinstance(node, dict) or "resourceType" in node:
        raise _UndecidedError
    value, extras = node.get(name), node.get("_" + name)
    if (value is None or isinstance(value, str)) and (extras is None or isinstance(extras, dict)):
        return value
    raise _UndecidedError


def _per_1(node: Any) -> bool:
    # start.hasValue().not() or end.hasValue().not() or (start <= end): holds unless both have
    # a value and start is later. hasValue() looks at the value only: an extension beside it
    # (_start) changes nothing (fhirpathpy counts _start as a second item: the tests leave it
    # out there). (start <= end) is empty when the precisions leave it unknown: that holds.
    # A value that is no real dateTime (its format is an issue of its own) is left to FHIRPath.
    start, end = _primitive(node, "start"), _primitive(node, "end")
    if start is None or end is None:
        return True
    try:
        order = compare(start, end)
    except ValueError:
        raise _UndecidedError from None
    return order is None or order <= 0


def _ref_1(node: Any) -> bool:
    # reference.startsWith('#').not() or (reference.substring(1).trace('url') in
    # %rootResource.contained.id.trace('ids')): without a reference both sides are empty and so
    # is the result (it holds: a Reference with only a display or an identifier); a reference
    # not starting with '#' makes the left side true. A local reference ('#', '#id') needs
    # %rootResource: left to FHIRPath, as is a reference beside its _reference (two items).
    found = _path(node, "reference")
    if not found:
        return True
    if len(found) != 1 or not isinstance(found[0], str) or found[0].startswith("#"):
        raise _UndecidedError
    return True


def _qty_3(node: Any) -> bool:
    # code.empty() or system.exists(): a unit code needs its system.
    return not _path(node, "code") or bool(_path(node, "system"))


def _cpt_2(node: Any) -> bool:
    # value.empty() or system.exists(): a telecom value needs its system.
    return not _path(node, "value") or bool(_path(node, "system"))


_CHECKS: dict[tuple[str, str], NativeCheck] = {
    ("dom-2", "contained.contained.empty()"): _shortcut(_no_contained, _dom_2),
    (
        "dom-3",
        "contained.where((('#'+id in (%resource.descendants().reference"
        " | %resource.descendants().as(canonical) | %resource.descendants().as(uri)"
        " | %resource.descendants().as(url))) or descendants().where(reference = '#').exists()"
        " or descendants().where(as(canonical) = '#').exists()"
        " or descendants().where(as(canonical) = '#').exists()).not())"
        ".trace('unmatched', id).empty()",
    ): _shortcut(_no_contained, _dom_3),
    (
        "dom-4",
        "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
    ): _shortcut(_no_contained, _dom_4),
    ("dom-5", "contained.meta.security.empty()"): _shortcut(_no_contained, _dom_5),
    ("dom-6", "text.`div`.exists()"): _decided(_dom_6),
    ("bdl-5", "resource.exists() or request.exists() or response.exists()"): _decided(_bdl_5),
    ("bdl-8", "fullUrl.exists() implies fullUrl.contains('/_history/').not()"): _decided(_bdl_8),
    ("cpl-3", "detail.empty() or reference.empty()"): _decided(_cpl_3),
    ("org-1", "(identifier.count() + name.count()) > 0"): _decided(_org_1),
    ("ppc-1", "policy.exists() or policyRule.exists()"): _decided(_ppc_1),
    **{
        (
            key,
            "patient.exists() or scope.coding.where(system='something'"
            f" and code='{code}').exists().not()",
        ): _decided(_ppc(code))
        for key, code in (
            ("ppc-2", "patient-privacy"),
            ("ppc-3", "research"),
            ("ppc-4", "adr"),
            ("ppc-5", "treatment"),
        )
    },
    (
        "per-1",
        "start.hasValue().not() or end.hasValue().not() or (start <= end)",
    ): _decided(_per_1),
    (
        "ref-1",
        "reference.startsWith('#').not() or (reference.substring(1).trace('url')"
        " in %rootResource.contained.id.trace('ids'))",
    ): _shortcut(_plain_reference, _ref_1),
    ("qty-3", "code.empty() or system.exists()"): _decided(_qty_3),
    ("cpt-2", "value.empty() or system.exists()"): _decided(_cpt_2),
}


def native_check(key: str, expression: str) -> NativeCheck | None:
    """The Python check for invariant ``key`` with exactly this expression, if there is one."""
    return _CHECKS.get((key, expression))


def native_invariants() -> list[tuple[str, str]]:
    """Every (key, expression) decided here."""
    return list(_CHECKS)
