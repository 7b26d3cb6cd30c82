"""A generic FHIR R4 profile validator: any StructureDefinition, compiled once, issues as a list.

Walks an instance (FHIR JSON) against the rule tree of its profile and of every data type it
meets: unknown elements, cardinality (also inside backbone elements and slices), types and
primitive formats, fixed and pattern values, bindings, slicing, extensions, min/max values,
reference targets and FHIRPath invariants (an element's own and its data type's: datatypes.py).
https://hl7.org/fhir/R4/validation.html
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from reko_fhir.outcomes import Issue, IssueCode, IssueSeverity, distinct
from reko_fhir.validation import messages
from reko_fhir.validation.compiled import Constraint, Rule, compile_snapshot, matches_pattern
from reko_fhir.validation.datatypes import EXT_1, TypeInvariants, ext_1_holds
from reko_fhir.validation.definitions import CORE_BASE, Definitions
from reko_fhir.validation.element_checks import (
    Run,
    bindings,
    cardinality,
    invariants,
    limits,
    quantity_limits,
)
from reko_fhir.validation.layout import WalkPlan
from reko_fhir.validation.placement import extension_context, reference_target
from reko_fhir.validation.primitive_elements import primitive_elements
from reko_fhir.validation.primitives import PRIMITIVE_TYPES, check_primitive
from reko_fhir.validation.slicing import Discriminators
from reko_fhir.validation.snapshot import SnapshotError, with_snapshot
from reko_fhir.validation.terminology import Terminology
from reko_fhir.validation.walk_plans import WalkPlans

Json = dict[str, Any]
_ERROR, _WARNING = IssueSeverity.ERROR, IssueSeverity.WARNING
_NONE: list[tuple[str, str, Any]] = []  # no values (never appended to)
_UNKNOWN = ("", "", False)  # a JSON name that is no element's
# An element that repeats (by its base) is a JSON array, one that does not is not, even of one
# value (https://hl7.org/fhir/R4/json.html#list)
_AN_ARRAY = "this element repeats: its value is a JSON array"
_NOT_AN_ARRAY = "this element does not repeat: its value is not a JSON array"
_SYSTEM_TYPES = "http://hl7.org/fhirpath/"  # System.String … (primitives.is_primitive)


class Validator:
    """Validates resources against profiles; profiles are compiled on first use and kept."""

    def __init__(self, definitions: Definitions | None = None, *, compiled: bool = True) -> None:
        """``compiled=False``: invariants through fhirpathpy (after native.py and fhirpath_gaps.py)
        only, as before the FHIRPath compiler; the tests compare both."""
        self.definitions = definitions or Definitions.core()
        self.compiled = compiled
        self.terminology = Terminology(self.definitions)
        self._rules: dict[str, Rule] = {}
        self._quantities: dict[str, bool] = {}
        self._discriminators = Discriminators(self)
        self._kinds: dict[tuple[str, str], bool] = {}  # _is_a, answered once
        self.plans = WalkPlans(self.rule, self._is_a)
        self._own_constraints: dict[tuple[int, int], list[Constraint]] = {}  # profile's, not base's
        self._places: dict[tuple[int, int], str | None] = {}  # extension_context's answers
        self.types = TypeInvariants(self.definitions, self.rule)

    def rule(self, url: str) -> Rule | None:
        if url not in self._rules:
            structure = self.definitions.structure(url)
            if structure is None:
                return None
            try:
                elements = with_snapshot(structure, self.definitions)["snapshot"]["element"]
            except SnapshotError:
                return None
            self._rules[url] = compile_snapshot(elements, compiled=self.compiled)
        return self._rules[url]

    def validate(
        self,
        resource: Json,
        profile: str | None = None,
        where: str | None = None,
        entry: Callable[[str], Json | None] | None = None,
    ) -> list[Issue]:
        """Issues of ``resource`` against its base type and ``profile`` (when given).

        ``entry`` finds the other entries of the Bundle ``resource`` came in, by reference.
        """
        run = Run(resource, resource, entry=entry, member=self.terminology.member)
        kind = resource.get("resourceType")
        expression = where or str(kind)
        base = self.rule(CORE_BASE + str(kind)) if isinstance(kind, str) else None
        if base is None:
            run.add(
                _ERROR,
                IssueCode.STRUCTURE,
                f"unknown resource type '{kind}'",
                where or "resourceType",
            )
            return run.issues
        rules = [base]
        if profile and profile != CORE_BASE + str(kind):
            constrained = self.rule(profile)
            if constrained is None:
                run.add(
                    _WARNING,
                    IssueCode.NOT_SUPPORTED,
                    f"profile '{profile}' is not loaded",
                    expression,
                )
            elif not self._fits(profile, str(kind)):
                structure = self.definitions.structure(profile) or {}
                run.add(
                    _ERROR,
                    IssueCode.STRUCTURE,
                    f"wrong type for this profile: {profile} is for {structure.get('type')}"
                    f" resources, this is a {kind}; not checked against it",
                    expression,
                )
            else:
                rules.append(constrained)
        self._root(run, resource, base, expression)
        if len(rules) > 1:
            self._root(run, resource, rules[1], expression, shadow=base)
        return distinct(run.issues)  # base and profile find the same structural problems

    def _fits(self, profile: str, kind: str) -> bool:
        """A profile applies to its own type's resources (or any, for Resource/DomainResource)."""
        structure = self.definitions.structure(profile) or {}
        return structure.get("type") in (kind, "Resource", "DomainResource", None)

    # -- walking -------------------------------------------------------------------------------
    def _root(
        self, run: Run, node: Json, rule: Rule, where: str, shadow: Rule | None = None
    ) -> None:
        """A resource or extension against the root of a profile: its elements, then invariants.

        ``shadow``: the base type's root, already walked on this node. What the profile leaves
        as the base has it (an element and all below it the same, an invariant the same) finds
        the same issues again, which distinct() drops: it is not walked twice."""
        self._node(run, node, rule, where, shadow=shadow)
        constraints = rule.constraints
        if shadow is not None:
            key = (id(rule), id(shadow))
            if key not in self._own_constraints:
                self._own_constraints[key] = [c for c in constraints if c not in shadow.constraints]
            constraints = self._own_constraints[key]
        invariants(run, constraints, node, where, rule.path)

    def _node(  # noqa: PLR0917, PLR0915 - the walk's context; its loop in one frame (a call per value costs)
        self,
        run: Run,
        node: Json,
        rule: Rule,
        where: str,
        type_code: str | None = None,
        shadow: Rule | None = None,
        typed: bool = False,
    ) -> None:
        """The children of ``node`` against those of ``rule`` (holding a ``type_code``), then,
        when ``typed``, the invariants of its type."""
        plan = rule.walks.get(type_code if shadow is None else (type_code, id(shadow)))
        if plan is None:
            plan = self.plans.walk_plan(rule, type_code, shadow)
        if plan.inert and not typed:
            return  # the base walk found all there is here (WalkPlan.inert), ele-1 too
        if not node:
            run.add(
                _ERROR,
                IssueCode.INVARIANT,
                "an element must have a value or children (ele-1)",
                where,
            )
        mark = len(run.issues)
        # The values by element name (type, path, value), but for the names in plan.skip
        found: dict[str, list[tuple[str, str, Any]]] = {}
        unshadowed: set[str] | None = None  # names the base walk gave another rule or type
        primitive_parts = False
        keys = plan.keys
        for key, value in node.items():
            entry = keys.get(key, _UNKNOWN)
            if entry is None:
                continue  # same rules, same types: every key of it maps as in the base
            if entry is _UNKNOWN:
                if key[:1] == "_":
                    primitive_parts = True
                elif key not in ("resourceType", "fhir_comments"):
                    run.add(
                        _ERROR, IssueCode.STRUCTURE, f"unknown element '{key}'", f"{where}.{key}"
                    )
                continue
            name, type_of, other = entry
            if other:
                unshadowed = unshadowed or set()
                unshadowed.add(name)
            listed = found.get(name)
            if listed is None:
                listed = found[name] = []
            if isinstance(value, list):
                if key not in plan.arrays:
                    run.add(_ERROR, IssueCode.STRUCTURE, _NOT_AN_ARRAY, f"{where}.{key}")
                # a loop, not a comprehension: Python 3.11 makes a function object for each
                for index, item in enumerate(value):
                    listed.append((type_of, f"{where}.{key}[{index}]", item))
            else:
                if key in plan.arrays:
                    run.add(_ERROR, IssueCode.STRUCTURE, _AN_ARRAY, f"{where}.{key}")
                listed.append((type_of, f"{where}.{key}", value))
        carried = self._carried(run, node, plan, where, found, mark) if primitive_parts else {}
        # Only the children present, or with something to say when absent (a minimum, slices),
        # in the definition's order: the others would find nothing. What the base walk
        # checked as the profile would (plan.skip) is not visited again.
        always = plan.always
        visit: Collection[str] = always.union(found) if always else found
        if carried:
            visit = always.union(found, carried).difference(plan.skip)
        steps = plan.steps
        for name in sorted(visit, key=plan.layout.order.__getitem__) if len(visit) > 1 else visit:
            child, checks, base, more, plain, least, most = steps[name]
            if unshadowed is not None and name in unshadowed:
                base = None
            values = found.get(name, _NONE)
            count = len(values)
            if carried and name in carried:
                count += len(carried[name])
            if count < least or count > most:
                cardinality(run, child, count, f"{where}.{name}", [v[2] for v in values])
            for type_code_, path, item in values:
                check = checks.get(type_code_) if checks else None
                if check is not None:
                    if (message := check(item)) is not None:  # all _value would check
                        run.add(_ERROR, IssueCode.VALUE, message, path)
                elif type_code_ in plain and type(item) is dict and "resourceType" not in item:
                    # all _value and _complex would do with it: its children, its type's
                    # invariants (but where the base walk checked them: see _complex)
                    again = base is None or base.slice_name is not None
                    self._node(
                        run, item, child, path, type_code_, base, again and not child.slice_name
                    )
                else:
                    self._value(run, child, type_code_, item, path, base)
            if more:
                self._slices_and_places(run, rule, child, values, f"{where}.{name}")
        if typed and type_code:
            own = self.types.of(type_code)
            if own:
                invariants(run, own, node, where, type_code)

    def _slices_and_places(
        self,
        run: Run,
        rule: Rule,
        child: Rule,
        values: list[tuple[str, str, Any]],
        where: str,
    ) -> None:
        """An element's slices, and an extension's place (its context) on ``rule``'s element."""
        if child.slices:
            self._slices(run, child, values, where)
        if child.name in ("extension", "modifierExtension"):
            for _, path, item in values:
                extension_context(run, self.definitions, rule, item, path, self._places)

    def _carried(  # noqa: PLR0917 - the walk's context
        self,
        run: Run,
        node: Json,
        plan: WalkPlan,
        where: str,
        found: dict[str, list[tuple[str, str, Any]]],
        mark: int,
    ) -> dict[str, list[str]]:
        """The `_x` parts of ``node``: checked first (their issues before those found since
        ``mark``), and a null beside its `_x` taken out of ``found`` (it is no value)."""
        said = run.issues[mark:]
        del run.issues[mark:]
        carried = primitive_elements(self, run, node, plan.layout.children, where)
        run.issues += said
        for name, paths in carried.items():
            if name in found:
                found[name] = [v for v in found[name] if v[2] is not None or v[1] not in paths]
        return carried

    def _value(  # noqa: PLR0917 - the walk's context
        self,
        run: Run,
        rule: Rule,
        type_code: str,
        value: Any,
        where: str,
        shadow: Rule | None = None,
    ) -> None:
        """One value of an element; ``shadow``: the base's rule that walked it already, with
        the same type (see _root)."""
        constrained = rule.constrained
        if constrained is not None:
            kind, expected = constrained
            ok = value == expected if kind == "fixed" else matches_pattern(value, expected)
            if not ok:
                found = messages.json_text(value, plain=False)
                wanted = messages.json_text(expected, plain=False)
                wrong = f"value {found} does not match the {kind} value {wanted}"
                run.add(_ERROR, IssueCode.VALUE, wrong, where)
        if type_code in PRIMITIVE_TYPES or type_code.startswith(_SYSTEM_TYPES):  # is_primitive
            message = check_primitive(type_code, value)
            if message:
                run.add(_ERROR, IssueCode.VALUE, message, where)
            if rule.has_limits:
                limits(run, rule, value, where)
        elif not isinstance(value, dict):
            run.add(_ERROR, IssueCode.STRUCTURE, f"a {type_code} is a JSON object", where)
            return
        else:
            self._complex(run, rule, type_code, value, where, shadow)
        if rule.bound:
            bindings(run, self.terminology, rule, type_code, value, where)
        if rule.constraints:
            base = rule.path if type_code in ("BackboneElement", "Element") else type_code
            invariants(run, rule.constraints, value, where, base)

    def _complex(  # noqa: PLR0917 - the walk's context
        self,
        run: Run,
        rule: Rule,
        type_code: str,
        value: Json,
        where: str,
        shadow: Rule | None = None,
    ) -> None:
        # What depends on the value and its type alone the base walk (shadow) did already.
        again = shadow is None or shadow.slice_name is not None
        if "resourceType" in value and not rule.children:
            kind = value.get("resourceType")
            nested = self.rule(CORE_BASE + str(kind)) if isinstance(kind, str) else None
            if nested is None:
                run.add(_ERROR, IssueCode.STRUCTURE, f"unknown resource type '{kind}'", where)
                return
            outer = run.resource, run.root
            # A contained resource keeps its container as %rootResource; an entry is its own.
            run.resource = value
            run.root = run.root if rule.path.endswith(".contained") else value
            if shadow is None or shadow.children:  # else the base walked it so already
                self._root(run, value, nested, where)
            self._apply_profiles(run, rule, type_code, value, where)
            run.resource, run.root = outer
            return
        if type_code in rule.type_profiles and not (
            type_code == "Extension" and rule.slice_name is None  # those go by their url
        ):
            self._apply_profiles(run, rule, type_code, value, where)
        quantity = self._quantities.get(type_code)
        if quantity is None:
            quantity = self._quantities[type_code] = self._is_a(type_code, "Quantity")
        if quantity:  # Duration, Age, SimpleQuantity … too
            quantity_limits(run, rule, value, where)
        if type_code == "Reference":
            reference_target(run, self.definitions, self._is_a, rule, value, where)
        if type_code == "Extension" and not rule.slice_name and again:
            self._extension(run, value, where)
        if type_code == "Extension" and shadow is None:
            if rule.slice_name is None:
                run.extensions[id(value)] = rule, where  # walked as any extension, next
            else:
                # An extension's slice: a slice that checks its children as the walk of it as
                # any extension did (on this run, at this place) would find the same again
                walked = run.extensions.get(id(value))
                same = walked is not None and walked[1] == where
                if same and walked is not None and self.plans.walked_as(rule, walked[0], value):
                    return
        # then its type's invariants, but on a slice's item (walked as its element's too)
        self._node(run, value, rule, where, type_code, shadow, rule.slice_name is None and again)

    def _apply_profiles(
        self, run: Run, rule: Rule, type_code: str, value: Json, where: str
    ) -> None:
        """The profiles an element's type names (ElementDefinition.type.profile): with several,
        the element conforms to any one of them
        (https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.type.profile).
        """
        urls = self._profiles_for(rule, type_code)
        if not urls:
            return
        loaded = [(url, self.rule(url)) for url in urls]
        for url, constrained in loaded:
            if constrained is None and rule.id not in run.discriminating:
                # one that only picks a slice decides nothing
                message = f"profile '{url}' is not known: the element is not checked against it"
                run.add(_ERROR, IssueCode.NOT_SUPPORTED, message, where)
        checked = [(url, r) for url, r in loaded if r is not None]
        if len(checked) == 1:
            url, constrained = checked[0]
            # A sliced extension was walked against its url's profile already, as an extension
            # (_extension, on the same run): again would only repeat its issues.
            if not (type_code == "Extension" and rule.slice_name and value.get("url") == url):
                self._root(run, value, constrained, where)
            return
        tried: list[tuple[str, list[Issue]]] = []
        for url, constrained in checked:
            trial = Run(run.resource, run.root, entry=run.entry, member=run.member)
            trial.discriminating = run.discriminating
            self._root(trial, value, constrained, where)
            if not [i for i in trial.issues if i.is_error]:
                run.issues += trial.issues  # one matches: its warnings stand, the others' not
                return
            tried.append((url, trial.issues))
        if tried:
            firsts = "; ".join(
                f"{url}: {next(i.diagnostics for i in found if i.is_error)}" for url, found in tried
            )
            run.add(_ERROR, IssueCode.STRUCTURE, f"matches none of its profiles ({firsts})", where)

    def _is_a(self, kind: str, base: str) -> bool:
        """``kind`` is ``base`` or derives from it (Patient from DomainResource, Age from
        Quantity), following baseDefinition through the core."""
        known = self._kinds.get((kind, base))
        if known is None:
            known = self._kinds[(kind, base)] = self.definitions.derives(kind, base)
        return known

    def _extension(self, run: Run, value: Json, where: str) -> None:
        if not ext_1_holds(value):
            run.add(_ERROR, IssueCode.INVARIANT, EXT_1, where)
        url = value.get("url")
        # A relative url names a part of a complex extension, checked by that extension's profile.
        if not isinstance(url, str) or ":" not in url:
            return
        rule = self.rule(url)
        if rule is None:
            if self.definitions.structure(url) is None:
                run.add(
                    IssueSeverity.WARNING,
                    IssueCode.NOT_SUPPORTED,
                    f"unknown extension '{url}'",
                    where,
                )
            return
        self._root(run, value, rule, where)

    # -- slicing -------------------------------------------------------------------------------
    def _slices(self, run: Run, rule: Rule, values: list[tuple[str, str, Any]], where: str) -> None:
        slicing = rule.slicing or {}
        counts = dict.fromkeys((s.id for s in rule.slices), 0)
        for discriminator in slicing.get("discriminator") or []:
            if discriminator.get("type") == "profile":
                for slice_rule in rule.slices:
                    path = str(discriminator.get("path", "$this"))
                    target = (
                        slice_rule
                        if path == "$this"
                        else self._discriminators.rule_at(slice_rule, path)
                    )
                    if target is not None:
                        run.discriminating.add(target.id)
        for type_code, path, item in values:
            matched = next(
                (
                    s
                    for s in rule.slices
                    if self._discriminators.in_slice(s, slicing, type_code, item)
                ),
                None,
            )
            if matched is None:
                if slicing.get("rules") == "closed":
                    run.add(
                        _ERROR,
                        IssueCode.STRUCTURE,
                        f"{rule.path}: this element matches no slice of a closed slicing",
                        path,
                    )
                continue
            counts[matched.id] += 1
            self._value(run, matched, type_code, item, path)
        for slice_rule in rule.slices:
            name = slice_rule.slice_name or slice_rule.id
            cardinality(run, slice_rule, counts[slice_rule.id], f"{where}:{name}")

    @staticmethod
    def _profiles_for(rule: Rule, type_code: str) -> list[str]:
        return rule.type_profiles.get(type_code, [])
