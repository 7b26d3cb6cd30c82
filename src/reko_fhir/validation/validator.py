"""A generic FHIR R4 profile validator: any StructureDefinition, compiled once, issues as a list.

Walks an instance (FHIR JSON) against the rule tree of its profile and of every data type it
meets: unknown elements, cardinality (also inside backbone elements and slices), types and
primitive formats, fixed and pattern values, bindings, slicing, extensions, min/max values,
reference targets and FHIRPath invariants (an element's own and its data type's: datatypes.py).
https://hl7.org/fhir/R4/validation.html
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reko_fhir.outcomes import Issue, IssueCode, IssueSeverity, distinct
from reko_fhir.validation import messages
from reko_fhir.validation.compiled import Rule, compile_snapshot, matches_pattern
from reko_fhir.validation.datatypes import EXT_1, TypeInvariants, ext_1_holds
from reko_fhir.validation.definitions import CORE_BASE, Definitions
from reko_fhir.validation.element_checks import (
    Run,
    bindings,
    cardinality,
    invariants,
    limits,
    quantity_limits,
    target_type,
)
from reko_fhir.validation.issue_kinds import UNDECIDED_MARK
from reko_fhir.validation.primitive_elements import primitive_elements
from reko_fhir.validation.primitives import check_primitive, is_primitive
from reko_fhir.validation.slicing import type_at, walk
from reko_fhir.validation.snapshot import SnapshotError, with_snapshot
from reko_fhir.validation.terminology import Terminology

Json = dict[str, Any]
_ERROR, _WARNING = IssueSeverity.ERROR, IssueSeverity.WARNING


class _Layout:
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


class Validator:
    """Validates resources against profiles; profiles are compiled on first use and kept."""

    def __init__(self, definitions: Definitions | None = None, *, compiled: bool = True) -> None:
        """``compiled=False``: invariants through fhirpathpy (after native.py and fhirpath_gaps.py)
        only, as before the FHIRPath compiler; the tests compare both."""
        self.definitions = definitions or Definitions.core()
        self.compiled = compiled
        self.terminology = Terminology(self.definitions)
        self._rules: dict[str, Rule] = {}
        self._children: dict[tuple[int, str | None], dict[str, Rule]] = {}
        self._layouts: dict[int, _Layout] = {}  # by id() of a children dict kept in _children
        self._kinds: dict[tuple[str, str], bool] = {}  # _is_a, answered once
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
        for rule in rules:
            self._root(run, resource, rule, expression)
        return distinct(run.issues)  # base and profile find the same structural problems

    def _fits(self, profile: str, kind: str) -> bool:
        """A profile applies to its own type's resources (or any, for Resource/DomainResource)."""
        structure = self.definitions.structure(profile) or {}
        return structure.get("type") in (kind, "Resource", "DomainResource", None)

    # -- walking -------------------------------------------------------------------------------
    def _root(self, run: Run, node: Json, rule: Rule, where: str) -> None:
        """A resource or extension against the root of a profile: its elements, then invariants."""
        self._node(run, node, rule, where)
        invariants(run, rule.constraints, node, where, rule.path)

    def _children_of(self, rule: Rule, type_code: str | None) -> dict[str, Rule]:
        """What may stand inside an element: its type's children, overlaid by the profile's own."""
        key = (id(rule), type_code)  # ids repeat across profiles; rule objects live as long as self
        if key not in self._children:
            base: dict[str, Rule] = {}
            if type_code and type_code != "BackboneElement":  # a primitive's: for its `_x`
                type_rule = self.rule(CORE_BASE + type_code)
                if type_rule is not None:
                    base = type_rule.children
            self._children[key] = {**base, **rule.children} if base else rule.children
        return self._children[key]

    def _node(
        self, run: Run, node: Json, rule: Rule, where: str, type_code: str | None = None
    ) -> None:
        children = self._children_of(rule, type_code)
        layout = self._layout(children)
        if not node:
            run.add(
                _ERROR,
                IssueCode.INVARIANT,
                "an element must have a value or children (ele-1)",
                where,
            )
        found: dict[str, list[tuple[str, str, Any]]] = {}
        carried = primitive_elements(self, run, node, children, where)  # `_x`: value-less ones
        for key, value in node.items():
            if key == "resourceType" or key.startswith("_"):
                continue
            child, choice = layout.child(key)
            if child is None:
                if key != "fhir_comments":
                    run.add(
                        _ERROR, IssueCode.STRUCTURE, f"unknown element '{key}'", f"{where}.{key}"
                    )
                continue
            type_of = choice or (child.type_codes[0] if child.type_codes else "BackboneElement")
            listed = found.setdefault(child.name, [])
            if isinstance(value, list):
                shadowed = carried.get(child.name, ())
                for index, item in enumerate(value):
                    path = f"{where}.{key}[{index}]"
                    if item is None and path in shadowed:
                        continue
                    listed.append((type_of, path, item))
            else:
                path = f"{where}.{key}"
                if value is None and path in carried.get(child.name, ()):
                    continue
                listed.append((type_of, path, value))
        # Only the children present, or with something to say when absent (a minimum, slices),
        # in the definition's order: the others would find nothing.
        visit = layout.always.union(found, carried)
        for name in sorted(visit, key=layout.order.__getitem__):
            child = children[name]
            values = found.get(name, [])
            count = len(values) + len(carried.get(name, ()))
            cardinality(run, child, count, f"{where}.{name}", [v[2] for v in values])
            for type_code_, path, item in values:
                self._value(run, child, type_code_, item, path)
            if child.slices:
                self._slices(run, child, values, f"{where}.{name}")
            if name in ("extension", "modifierExtension"):
                for _, path, item in values:
                    self._context(run, rule, item, path)

    def _layout(self, children: dict[str, Rule]) -> _Layout:
        layout = self._layouts.get(id(children))
        if layout is None or layout.children is not children:
            layout = self._layouts[id(children)] = _Layout(children)
        return layout

    def _context(self, run: Run, host: Rule, extension: Any, where: str) -> None:
        """An extension stands only where its definition's ``context`` allows it."""
        url = extension.get("url") if isinstance(extension, dict) else None
        structure = self.definitions.structure(url) if isinstance(url, str) else None
        contexts = [c for c in (structure or {}).get("context", []) if c.get("type") == "element"]
        if not contexts:
            return
        host_type = host.path if "." not in host.path else self._single_type(host)
        allowed = {str(c.get("expression")) for c in contexts}
        if allowed & {"Element", "Base", "Resource", "DomainResource", host.path, host_type}:
            return
        places = ", ".join(sorted(allowed))
        run.add(
            _ERROR,
            IssueCode.STRUCTURE,
            f"extension {url} is not allowed on {host.path} (only {places})",
            where,
        )

    def _child(self, children: dict[str, Rule], key: str) -> tuple[Rule | None, str | None]:
        return self._layout(children).child(key)

    @staticmethod
    def _single_type(rule: Rule) -> str:
        codes = rule.type_codes
        return codes[0] if codes else "BackboneElement"

    def _value(self, run: Run, rule: Rule, type_code: str, value: Any, where: str) -> None:
        constrained = rule.constrained
        if constrained is not None:
            kind, expected = constrained
            ok = value == expected if kind == "fixed" else matches_pattern(value, expected)
            if not ok:
                found = messages.json_text(value, plain=False)
                wanted = messages.json_text(expected, plain=False)
                wrong = f"value {found} does not match the {kind} value {wanted}"
                run.add(_ERROR, IssueCode.VALUE, wrong, where)
        if is_primitive(type_code):
            message = check_primitive(type_code, value)
            if message:
                run.add(_ERROR, IssueCode.VALUE, message, where)
            if rule.has_limits:
                limits(run, rule, value, where)
        elif not isinstance(value, dict):
            run.add(_ERROR, IssueCode.STRUCTURE, f"a {type_code} is a JSON object", where)
            return
        else:
            self._complex(run, rule, type_code, value, where)
        if rule.bound:
            bindings(run, self.terminology, rule, type_code, value, where)
        if rule.constraints:
            base = rule.path if type_code in ("BackboneElement", "Element") else type_code
            invariants(run, rule.constraints, value, where, base)

    def _complex(self, run: Run, rule: Rule, type_code: str, value: Json, where: str) -> None:
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
            self._root(run, value, nested, where)
            self._apply_profiles(run, rule, type_code, value, where)
            run.resource, run.root = outer
            return
        if not (type_code == "Extension" and rule.slice_name is None):  # those go by their url
            self._apply_profiles(run, rule, type_code, value, where)
        if self._is_a(type_code, "Quantity"):  # Duration, Age, SimpleQuantity … too
            quantity_limits(run, rule, value, where)
        if type_code == "Reference":
            self._reference_target(run, rule, value, where)
        if type_code == "Extension" and not rule.slice_name:
            self._extension(run, value, where)
        self._node(run, value, rule, where, type_code)
        if rule.slice_name is None:  # an item of a slice is walked as one of its element too
            own = self.types.of(type_code)
            if own:
                invariants(run, own, value, where, type_code)

    def _apply_profiles(
        self, run: Run, rule: Rule, type_code: str, value: Json, where: str
    ) -> None:
        """The profiles an element's type names (ElementDefinition.type.profile): with several,
        the element conforms to any one of them
        (https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.type.profile).
        """
        urls = self._profiles_for(rule, type_code)
        loaded = [(url, self.rule(url)) for url in urls]
        for url, constrained in loaded:
            if constrained is None and rule.id not in run.discriminating:
                # one that only picks a slice decides nothing
                message = f"profile '{url}' is not known: the element is not checked against it"
                run.add(_ERROR, IssueCode.NOT_SUPPORTED, message, where)
        checked = [(url, r) for url, r in loaded if r is not None]
        if len(checked) == 1:
            self._root(run, value, checked[0][1], where)
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

    def _reference_target(self, run: Run, rule: Rule, value: Json, where: str) -> None:
        """The target's type is that of one of the target profiles (any one may match).

        The type is read from the reference (``Patient/1``, an absolute URL), or from the
        resource it resolves to: a contained one (``#id``), a Bundle entry (``urn:uuid:…``).
        A target profile not loaded here could allow any type: if no loaded one matches, the
        check is undecided (and said so), not passed.
        """
        reference = value.get("reference")
        targets = [p for t in rule.types for p in t.get("targetProfile", [])]
        if not isinstance(reference, str) or not targets:
            return
        kind = target_type(run, reference)
        if kind is None:
            return  # a reference not resolvable here: ref-1 and the rules across resources
        allowed, unknown = set(), []
        for url in targets:
            structure = self.definitions.structure(url)
            if structure is None:
                unknown.append(url)
            else:
                allowed.add(structure["type"])
        if "Resource" in allowed or any(self._is_a(kind, t) for t in allowed):
            return
        if unknown:
            why = f"{', '.join(unknown)} is not loaded here; the target is a {kind}"
            run.add(
                IssueSeverity.INFORMATION,
                IssueCode.NOT_SUPPORTED,
                f"target profile: {UNDECIDED_MARK}: {why}",
                where,
            )
            return
        run.add(
            _ERROR,
            IssueCode.STRUCTURE,
            f"a reference to {kind}, not to {' or '.join(sorted(allowed))}",
            where,
        )

    def _is_a(self, kind: str, base: str) -> bool:
        """``kind`` is ``base`` or derives from it (Patient from DomainResource, Age from
        Quantity), following baseDefinition through the core."""
        known = self._kinds.get((kind, base))
        if known is None:
            known = self._kinds[(kind, base)] = self._derives(kind, base)
        return known

    def _derives(self, kind: str, base: str) -> bool:
        seen = 0
        url: str | None = CORE_BASE + kind
        while url and seen < 10:
            structure = self.definitions.structure(url)
            if structure is None:
                return False
            if structure.get("type") == base:
                return True
            url, seen = structure.get("baseDefinition"), seen + 1
        return False

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
                    target = slice_rule if path == "$this" else self._rule_at(slice_rule, path)
                    if target is not None:
                        run.discriminating.add(target.id)
        for type_code, path, item in values:
            matched = next(
                (s for s in rule.slices if self._in_slice(s, slicing, type_code, item)), None
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
        return [str(p) for t in rule.types if t["code"] == type_code for p in t.get("profile", [])]

    @staticmethod
    def _type_profile(rule: Rule) -> str | None:
        for t in rule.types:
            for url in t.get("profile", []):
                return str(url)
        return None

    def _in_slice(self, slice_rule: Rule, slicing: Json, type_code: str, item: Any) -> bool:
        discriminators = slicing.get("discriminator") or []
        if not discriminators:
            return False
        return all(self._discriminates(slice_rule, d, type_code, item) for d in discriminators)

    def _discriminates(
        self, slice_rule: Rule, discriminator: Json, type_code: str, item: Any
    ) -> bool:
        kind, path = discriminator.get("type"), str(discriminator.get("path", "$this"))
        if kind == "type":
            codes = slice_rule.type_codes if path == "$this" else self._codes_at(slice_rule, path)
            name = type_at(item, path, type_code, codes, self._is_complex)
            return isinstance(name, str) and any(self._is_a(name, code) for code in codes)
        if kind == "profile":
            target = item if path == "$this" else walk(item, path)
            profile_urls = [
                u for u in self._profiles_at(slice_rule, path) if self.rule(u) is not None
            ]
            if not isinstance(target, dict):
                return False
            if not profile_urls:  # profiles not loaded: the declared types still discriminate
                return target.get("resourceType") in self._codes_at(slice_rule, path)
            return any(
                not [i for i in self.validate(target, url) if i.is_error] for url in profile_urls
            )
        if kind == "exists":
            return (walk(item, path) is not None) == (slice_rule.min > 0)
        if kind in ("value", "pattern"):
            expected = self._expected_at(slice_rule, path)
            if expected is None:
                return False
            actual = item if path == "$this" else walk(item, path)
            return (
                bool(actual == expected[1])
                if kind == "value" and expected[0] == "fixed"
                else matches_pattern(actual, expected[1])
            )
        return False

    def _is_complex(self, type_code: str) -> bool:
        return self.definitions.structure(CORE_BASE + type_code) is not None

    def _rule_at(self, rule: Rule, path: str) -> Rule | None:
        current: Rule | None = rule
        for name in path.split("."):
            if current is None:
                return None
            children = self._children_of(current, self._single_type(current))
            current = (
                current.children.get(name)
                or current.children.get(f"{name}[x]")  # a choice element, by its stem
                or children.get(name)
                or children.get(f"{name}[x]")
            )
        return current

    def _expected_at(self, slice_rule: Rule, path: str) -> tuple[str, Any] | None:
        if path == "$this":
            return slice_rule.fixed_or_pattern()
        if path == "url":  # an extension slice: its url is the profile's canonical
            profile = self._type_profile(slice_rule)
            if profile:
                return "fixed", profile
        target = self._rule_at(slice_rule, path)
        return target.fixed_or_pattern() if target else None

    def _codes_at(self, slice_rule: Rule, path: str) -> list[str]:
        target = self._rule_at(slice_rule, path)
        return target.type_codes if target else []

    def _profiles_at(self, slice_rule: Rule, path: str) -> list[str]:
        target = slice_rule if path == "$this" else self._rule_at(slice_rule, path)
        if target is None:
            return []
        return [p for t in target.types for p in t.get("profile", []) + t.get("targetProfile", [])]
