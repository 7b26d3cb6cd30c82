"""A profile compiled once into a tree of element rules, ready to walk an instance with.

Each :class:`Rule` is one ElementDefinition of a snapshot, with its children by name and its
slices; FHIRPath invariants are compiled here, once per expression, since compiling is what
makes evaluation slow (https://hl7.org/fhir/R4/elementdefinition.html).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from reko_fhir.validation.fhirpath_compiler import Fallback, Invariant, compile_invariant
from reko_fhir.validation.fhirpath_gaps import (
    FUNCTIONS,
    SCOPE,
    GapCheck,
    Scope,
    Undecided,
    Verdict,
    gap_check,
)
from reko_fhir.validation.fhirpath_syntax import syntax_error
from reko_fhir.validation.native import NativeCheck, native_check
from reko_fhir.validation.snapshot import split_id

Json = dict[str, Any]
Evaluator = Callable[..., list[Any]]
# fhirpathpy's node of a given FHIR type or path: navigation below it is typed (choice elements,
# dateTimes), as on a resource with a resourceType.
_typed_node = cast(Callable[[Any, str], Any], ResourceNode)

# Not evaluated through FHIRPath, whatever their expression: they stand on every element, and
# fhirpathpy cannot evaluate them on untyped JSON nodes (children() raises on any non-empty
# object; an extension's value[x] is not found under ``value``). The walker checks ele-1 (an
# empty object) and ext-1 (datatypes.py). Other invariants decided in Python: native.py.
NATIVE_CONSTRAINTS = frozenset({"ele-1", "ext-1"})


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str
    native: NativeCheck | None = field(default=None, compare=False, repr=False)
    gap: GapCheck | None = field(default=None, compare=False, repr=False)
    # The expression compiled to Python (fhirpath_compiler), None when not covered there.
    compiled: Invariant | None = field(default=None, compare=False, repr=False)

    def verdict(
        self,
        value: Any,
        resource: Json,
        root: Json | None = None,
        *,
        base: str | None = None,
        entry: Callable[[str], Json | None] | None = None,
        member: Callable[[Any, str], bool | None] | None = None,
    ) -> Verdict:
        """True (holds), False (fails) or :class:`Undecided` (the engine could not tell).

        ``resource`` is %resource, the resource ``value`` stands in; ``root`` is %rootResource,
        its container when it is a contained resource (by default the resource itself);
        ``base`` the type or path of ``value`` (``Range``, ``Goal.target``), so that FHIRPath
        navigates it typed (choice elements such as ``detail[x]`` are found only so);
        ``entry`` finds a Bundle's entry by reference, for ``resolve()``; ``member`` answers
        ``memberOf()``.

        Decided in Python when :mod:`reko_fhir.validation.native` (fast paths that agree with
        fhirpathpy) or :mod:`reko_fhir.validation.fhirpath_gaps` (what fhirpathpy lacks) has
        this key and expression, or by the expression compiled to Python
        (:mod:`reko_fhir.validation.fhirpath_compiler`, which gives fhirpathpy's result or
        falls back); otherwise through fhirpathpy. An expression fhirpathpy cannot
        compile, or raises on, is undecided, never a pass: the walker reports it. An empty
        result holds, as does a non-empty one other than ``[False]``.
        """
        if self.native is not None:
            decided = self.native(value)
            if decided is not None:
                return decided
        if self.gap is not None:
            found = self.gap(value)
            if found is not None:
                return found
        scope_root = resource if root is None else root
        if self.compiled is not None:
            try:
                return bool(self.compiled(value, resource, scope_root) != [False])
            except Fallback:
                pass  # something the compiled form does not decide: fhirpathpy does
        check = compiled_fhirpath(self.expression)
        if isinstance(check, str):
            return Undecided(f"fhirpathpy cannot compile it ({check})")
        context = {"resource": resource, "rootResource": scope_root}
        node = _typed_node(value, base) if base else value
        token = SCOPE.set(Scope(scope_root, entry, member))
        try:
            result = check(node, context)
        except Exception as exc:  # a function or operand fhirpathpy lacks on this node
            return Undecided(f"fhirpathpy cannot evaluate it here ({_reason(exc)})")
        finally:
            SCOPE.reset(token)
        return bool(result != [False])


# A Python object's default repr (fhirpathpy's nodes in its messages): its address changes
# from run to run, so the same issue would read differently each time and not be one (distinct).
_OBJECT_REPR = re.compile(r"<(?:\S*\.)?(\w+) object at 0x[0-9a-fA-F]+>")


def _reason(exc: BaseException) -> str:
    """The exception as an issue says it: the same text for the same failure, on any run."""
    text = _OBJECT_REPR.sub(r"<\1>", " ".join(str(exc).split()))
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


_MIN_LENGTH = "http://hl7.org/fhir/StructureDefinition/minLength"
# ElementDefinition.binding.additional (R5), as its cross-version extension in R4 profiles.
_ADDITIONAL = "extension-ElementDefinition.binding.additional"
_PURPOSES = {
    "required": "required",
    "maximum": "required",
    "extensible": "extensible",
    "current": "extensible",
}


@dataclass(slots=True)
class Rule:
    """One element of a profile: what may stand at this place in an instance.

    What the walker asks of the definition on every value (its fixed or pattern value, its
    limits, its bindings, its types) is read from it once, here, not on every call.
    """

    id: str
    path: str
    name: str
    min: int
    max: int | None
    types: list[Json]
    definition: Json
    constraints: list[Constraint] = field(default_factory=list)
    children: dict[str, Rule] = field(default_factory=dict)
    slices: list[Rule] = field(default_factory=list)
    type_codes: list[str] = field(init=False)
    slicing: Json | None = field(init=False)
    slice_name: str | None = field(init=False)
    # ("fixed", value) or ("pattern", value) when the element constrains its value
    constrained: tuple[str, Any] | None = field(init=False)
    # minValue[x]/maxValue[x] in the order the definition has them: (bound, is a minimum)
    bounds: list[tuple[Any, bool]] = field(init=False)
    max_length: int | None = field(init=False)
    min_lengths: list[int] = field(init=False)  # the minLength extension's values
    has_limits: bool = field(init=False)
    # A JSON array in an instance: by the base element's max, whatever a profile narrows it to
    # (https://hl7.org/fhir/R4/json.html#list)
    repeats: bool = field(init=False)
    # Required and extensible bindings to check: (strength, value set url, message label)
    bound: list[tuple[str, str, str]] = field(init=False)
    target_profiles: list[str] = field(init=False)  # of its Reference types
    # ElementDefinition.type.profile by type code, for the codes that have any
    type_profiles: dict[str, list[str]] = field(init=False)
    # The validator's walk plan (layout.Layout) inside this element, by type code: kept here
    # as the rule belongs to one validator's compiled profiles.
    plans: dict[str | None, Any] = field(init=False, repr=False, compare=False)
    # Its walk plans (layout.WalkPlan): by type code, or (type code, id of the base's rule)
    walks: dict[Any, Any] = field(init=False, repr=False, compare=False)
    # Target types a reference here was found to fit (placement.reference_target), answered once
    fitting_targets: set[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        definition = self.definition
        self.type_codes = [t["code"] for t in self.types]
        slicing = definition.get("slicing")
        self.slicing = slicing if isinstance(slicing, dict) else None
        name = definition.get("sliceName")
        self.slice_name = name if isinstance(name, str) else None
        self.constrained = None
        for key, value in definition.items():
            if key.startswith("fixed"):
                self.constrained = "fixed", value
                break
            if key.startswith("pattern"):
                self.constrained = "pattern", value
                break
        self.bounds = [
            (bound, key.startswith("minValue"))
            for key, bound in definition.items()
            if key.startswith(("minValue", "maxValue"))
        ]
        limit = definition.get("maxLength")
        self.max_length = limit if isinstance(limit, int) else None
        self.min_lengths = [
            least
            for extension in definition.get("extension", [])
            if isinstance(extension, dict)
            and extension.get("url") == _MIN_LENGTH
            and isinstance(least := extension.get("valueInteger"), int)
        ]
        self.has_limits = bool(self.bounds or self.max_length is not None or self.min_lengths)
        base = definition.get("base")
        base_max = base.get("max") if isinstance(base, dict) else None
        if isinstance(base_max, str):
            self.repeats = base_max not in ("0", "1")
        else:
            self.repeats = self.max is None or self.max > 1
        self.bound = _bindings(definition)
        self.target_profiles = [p for t in self.types for p in t.get("targetProfile", [])]
        self.type_profiles = {}
        for t in self.types:
            if t.get("profile"):
                self.type_profiles.setdefault(t["code"], []).extend(str(p) for p in t["profile"])
        self.plans = {}
        self.walks = {}
        self.fitting_targets = set()

    def fixed_or_pattern(self) -> tuple[str, Any] | None:
        """``("fixed", value)`` or ``("pattern", value)`` when the element constrains its value."""
        return self.constrained

    def choice_type(self, json_name: str) -> str | None:
        """For ``value[x]``: the type a JSON name such as ``valueQuantity`` carries."""
        if not self.name.endswith("[x]"):
            return None
        stem = self.name[:-3]
        if not json_name.startswith(stem):
            return None
        suffix = json_name[len(stem) :]
        for code in self.type_codes:
            if code[:1].upper() + code[1:] == suffix:
                return code
        return None


def _bindings(definition: Json) -> list[tuple[str, str, str]]:
    """The binding, and additional bindings (R5's, used in R4 as an extension), that are checked:
    required and maximum ones must hold, extensible and current ones warn."""
    binding = definition.get("binding") or {}
    bound = [(binding.get("strength"), binding.get("valueSet"), "")]
    for extension in binding.get("extension", []):
        if str(extension.get("url", "")).endswith(_ADDITIONAL):
            parts = {e.get("url"): e for e in extension.get("extension", [])}
            purpose = (parts.get("purpose") or {}).get("valueCode")
            url = (parts.get("valueSet") or {}).get("valueCanonical")
            strength = _PURPOSES.get(str(purpose))
            bound.append((strength, url, f"additional binding ({purpose}): "))
    return [
        (strength, value_set, label)
        for strength, value_set, label in bound
        if strength in ("required", "extensible") and isinstance(value_set, str)
    ]


def matches_pattern(value: Any, pattern: Any) -> bool:
    """``value`` has at least what ``pattern`` has (https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.pattern_x_)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            matches_pattern(value.get(k), v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(value, list) and all(
            any(matches_pattern(v, p) for v in value) for p in pattern
        )
    return bool(value == pattern)


def _max(value: object) -> int | None:
    return None if value in (None, "*") else int(str(value))


def compile_snapshot(elements: list[Json], *, compiled: bool = True) -> Rule:
    """The rule tree of a snapshot; the root is the resource or data type element.

    ``compiled``: invariants compiled to Python where fhirpath_compiler covers them (False:
    fhirpathpy alone after native.py and fhirpath_gaps.py, the way to compare both)."""
    by_id: dict[str, Rule] = {}
    root: Rule | None = None
    for element in elements:
        parts = split_id(element["id"])
        last = parts[-1]
        rule = Rule(
            id=element["id"],
            path=element["path"],
            name=last.split(":")[0],
            min=int(element.get("min", 0)),
            max=_max(element.get("max", "*")),
            types=list(element.get("type") or []),
            definition=element,
            constraints=[
                Constraint(
                    c["key"],
                    c.get("severity", "error"),
                    c.get("human", ""),
                    c["expression"],
                    native_check(c["key"], c["expression"]),
                    gap_check(c["key"], c["expression"]),
                    compile_invariant(c["expression"]) if compiled else None,
                )
                for c in element.get("constraint", [])
                if c.get("expression") and c["key"] not in NATIVE_CONSTRAINTS
            ],
        )
        by_id[rule.id] = rule
        if len(parts) == 1:
            root = rule
            continue
        parent_id = ".".join(parts[:-1])
        if ":" in last:
            sliced = by_id.get(f"{parent_id}.{rule.name}" if parent_id else rule.name)
            if sliced is not None:
                sliced.slices.append(rule)
            continue
        parent = by_id.get(parent_id)
        if parent is not None:
            parent.children[rule.name] = rule
    if root is None:
        raise ValueError("a snapshot without a root element")
    # contentReference (Questionnaire.item.item → #Questionnaire.item) shares the children
    # of the element it names.
    for rule in by_id.values():
        reference = rule.definition.get("contentReference")
        if isinstance(reference, str) and not rule.children:
            target = by_id.get(reference.split("#", 1)[-1])
            if target is not None:
                rule.children = target.children
    return root


def _ignore_trace(*_: object) -> None:
    return None


@cache
def compiled_fhirpath(expression: str) -> Evaluator | str:
    """A compiled FHIRPath expression, or why it cannot be compiled (fhirpathpy's own parser
    recovers from syntax errors: fhirpath_syntax checks first)."""
    problem = syntax_error(expression)
    if problem is not None:
        return f"not valid FHIRPath: {problem}"
    try:
        # trace() in core invariants would print to stdout; a validator says nothing there.
        options = {"traceFn": _ignore_trace, "userInvocationTable": FUNCTIONS}
        return fhirpath_compile(expression, models["r4"], options)
    except Exception as exc:
        return _reason(exc)
