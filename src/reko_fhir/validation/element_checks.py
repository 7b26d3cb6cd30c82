"""The walk's state and the checks of one element: cardinality, min/max values and length,
Quantity limits, FHIRPath invariants (three-way: an undecided one is reported, never passed).

https://hl7.org/fhir/R4/elementdefinition.html (min, max, minValue[x], maxValue[x], maxLength,
constraint), https://hl7.org/fhir/R4/validation.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reko_fhir.outcomes import Issue, IssueCode, IssueSeverity
from reko_fhir.validation import messages
from reko_fhir.validation.compiled import Constraint, Rule
from reko_fhir.validation.datetimes import compare
from reko_fhir.validation.fhirpath_compiler import Fallback
from reko_fhir.validation.fhirpath_gaps import Verdict
from reko_fhir.validation.issue_kinds import UNDECIDED_MARK
from reko_fhir.validation.terminology import Terminology

Json = dict[str, Any]
_ERROR, _WARNING = IssueSeverity.ERROR, IssueSeverity.WARNING


@dataclass(slots=True)
class Run:
    resource: Json  # %resource: the resource being walked (a contained one too)
    root: Json  # %rootResource: that resource, or the container of a contained one
    issues: list[Issue] = field(default_factory=list)
    # Finds a Bundle entry by reference (fullUrl or Type/id), for FHIRPath's resolve().
    entry: Callable[[str], Json | None] | None = None
    # ValueSet membership of a value, for FHIRPath's memberOf() (Terminology.member).
    member: Callable[[Any, str], bool | None] | None = None
    # Elements whose type profile only picks a slice (a "profile" discriminator): a profile
    # missing there decides no slice, and is not itself a finding.
    discriminating: set[str] = field(default_factory=set)
    # The extensions walked as any extension (their element's rule), by id(): (rule, path)
    extensions: dict[int, tuple[Rule, str]] = field(default_factory=dict)

    def add(self, severity: IssueSeverity, code: IssueCode, message: str, where: str) -> None:
        self.issues.append(Issue(severity, code, message, where))


def cardinality(
    run: Run, rule: Rule, count: int, where: str, items: list[Any] | None = None
) -> None:
    # The element's path is the issue's expression: the message does not repeat it.
    if count < rule.min:
        run.add(
            _ERROR,
            IssueCode.REQUIRED,
            f"minimum required = {rule.min}, but only found {count}",
            where,
        )
    if rule.max == 0 and count:
        short = rule.definition.get("short")
        message = messages.prohibited(count, short, items or [])
        run.add(_ERROR, IssueCode.STRUCTURE, message, where)
    elif rule.max is not None and count > rule.max:
        run.add(_ERROR, IssueCode.STRUCTURE, f"max allowed = {rule.max}, but found {count}", where)


def limits(run: Run, rule: Rule, value: Any, where: str) -> None:
    """minValue[x]/maxValue[x] of a primitive, maxLength and the minLength extension.

    Numbers compare as numbers, dates and times as instants (datetimes.compare; an order the
    precisions leave open is no finding); a Quantity bound is quantity_limits' (a primitive is
    never compared with an object). The limits are the rule's, read once (compiled.Rule)."""
    if not rule.has_limits:
        return
    for bound, below in rule.bounds:
        order = _order(value, bound)
        if order is not None and (order < 0 if below else order > 0):
            word = "less than the minimum" if below else "more than the maximum"
            run.add(_ERROR, IssueCode.VALUE, f"{value} is {word} {bound}", where)
    limit = rule.max_length
    if limit is not None and isinstance(value, str) and len(value) > limit:
        run.add(_ERROR, IssueCode.VALUE, f"longer than the maximum length {limit}", where)
    for least in rule.min_lengths:
        if isinstance(value, str) and len(value) < least:
            run.add(_ERROR, IssueCode.VALUE, f"shorter than the minimum length {least}", where)


def _order(value: Any, bound: Any) -> int | None:
    numbers = int | float
    if isinstance(value, numbers) and isinstance(bound, numbers) and not isinstance(value, bool):
        return (value > bound) - (value < bound)
    if isinstance(value, str) and isinstance(bound, str):
        try:
            return compare(value, bound)
        except ValueError:
            return (value > bound) - (value < bound)  # times (hh:mm:ss): as text they order
    return None


def quantity_limits(run: Run, rule: Rule, value: Json, where: str) -> None:
    amount = value.get("value")
    if not isinstance(amount, int | float):
        return
    if not rule.bounds:
        return
    low = next((bound for bound, below in rule.bounds if below), None)
    high = next((bound for bound, below in rule.bounds if not below), None)
    for bound, below in ((low, True), (high, False)):
        if not isinstance(bound, dict) or not isinstance(bound.get("value"), int | float):
            continue
        if bound.get("code") and value.get("code") and bound["code"] != value["code"]:
            run.add(
                _ERROR,
                IssueCode.VALUE,
                f"the unit {value['code']} cannot be compared with {bound['code']}",
                where,
            )
        elif (amount < bound["value"]) if below else (amount > bound["value"]):
            word = "less than the minimum" if below else "more than the maximum"
            run.add(_ERROR, IssueCode.VALUE, f"{amount} is {word} {bound['value']}", where)


# False: every invariant through Constraint.verdict (the tests that watch it set this).
NATIVE_FIRST = True
_TYPED: dict[str, str] = {}  # a base, or "" for one FHIRPath cannot navigate typed


def invariants(
    run: Run, constraints: Iterable[Constraint], value: Any, where: str, base: str
) -> None:
    """Each invariant on ``value``, navigated in FHIRPath as ``base`` (its type or path)."""
    typed = _TYPED.get(base)
    if typed is None:
        typed = _TYPED[base] = base if base.replace(".", "").isalnum() else ""
    typed_base = typed or None  # not System.String's url
    for constraint in constraints:
        # native.py's answer, as verdict() gives it first, without its call (most invariants);
        # then, with no gap check, the compiled form's, as verdict() gives it next
        quick: Verdict | None = None
        if NATIVE_FIRST:
            native = constraint.native
            if native is not None:
                quick = native(value)
            compiled = constraint.compiled
            if quick is None and compiled is not None and constraint.gap is None:
                root = run.resource if run.root is None else run.root
                try:  # noqa: SIM105 - suppress() would cost a call on each
                    quick = compiled(value, run.resource, root) != [False]
                except Fallback:
                    pass  # verdict() falls back to fhirpathpy
        verdict: Verdict
        if quick is not None:
            verdict = quick
        else:
            verdict = constraint.verdict(
                value, run.resource, run.root, base=typed_base, entry=run.entry, member=run.member
            )
        if verdict is True:
            continue
        if verdict is False:
            severity = _ERROR if constraint.severity == "error" else _WARNING
            message, at = f"{constraint.key}: {constraint.human}", where
            child = messages.focus(constraint.expression)
            found = value.get(child) if child and isinstance(value, dict) else None
            if found is not None and not isinstance(found, list):  # one element: name it
                message = f"{message} (found: {messages.json_text(found)})"
                at = f"{where}.{child}" if isinstance(found, dict) else where
            run.add(severity, IssueCode.INVARIANT, message, at)
            continue
        run.add(
            IssueSeverity.INFORMATION,
            IssueCode.NOT_SUPPORTED,
            f"{constraint.key}: {UNDECIDED_MARK}: {verdict.reason};"
            f" expression: {constraint.expression}",
            where,
        )


def target_type(run: Run, reference: str) -> str | None:
    """The type of the resource a reference names: from its text (``Patient/1``, a URL), or
    from what it resolves to (a contained resource, a Bundle entry); None when unknown."""
    if reference.startswith("#"):
        if reference == "#":
            return None  # the container itself: how the HL7 validator types it is open
        contained = run.root.get("contained")
        for item in contained if isinstance(contained, list) else []:
            if isinstance(item, dict) and item.get("id") == reference[1:]:
                return str(item.get("resourceType"))
        return None
    if reference.startswith("urn:"):
        target = run.entry(reference) if run.entry is not None else None
        return str(target.get("resourceType")) if isinstance(target, dict) else None
    parts = reference.split("/_history/", maxsplit=1)[0].split("/")
    return parts[-2] if len(parts) >= 2 else ""


def bindings(  # noqa: PLR0917 - the walk's context
    run: Run, terminology: Terminology, rule: Rule, type_code: str, value: Any, where: str
) -> None:
    """The binding, and additional bindings (R5's, used in R4 as an extension): required and
    maximum ones must hold, extensible and current ones warn (read once: compiled.Rule)."""
    for strength, value_set, label in rule.bound:
        for severity, code, message in terminology.check(value_set, type_code, value, strength):
            run.add(severity, code, label + message, where)
