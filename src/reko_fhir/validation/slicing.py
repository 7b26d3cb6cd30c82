"""Slices: paths into a sliced item, and which slice an item is in by the discriminators.

https://hl7.org/fhir/R4/profiling.html#discriminator
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reko_fhir.validation.compiled import Rule, matches_pattern
from reko_fhir.validation.definitions import CORE_BASE
from reko_fhir.validation.layout import single_type

if TYPE_CHECKING:
    from reko_fhir.validation.validator import Validator

Json = dict[str, Any]


def walk(item: Any, path: str) -> Any:
    if type(item) is dict and "." not in path:
        return item.get(path)  # (most discriminators: ``url``, ``system``)
    current = item
    for name in path.split("."):
        if isinstance(current, list):
            current = current[0] if current else None
        if not isinstance(current, dict):
            return None
        current = current.get(name)
    return current


def type_at(
    item: Any, path: str, type_code: str, declared: list[str], is_complex: Callable[[str], bool]
) -> str | None:
    """The type of what stands at ``path`` in ``item``: a resource's own type, a choice
    element's by its JSON name (``contentString`` → string), else the one declared."""
    parent_path, _, last = path.rpartition(".")
    parent = item if path == "$this" or not parent_path else walk(item, parent_path)
    if isinstance(parent, list):
        parent = parent[0] if parent else None
    named = parent.get(last) if isinstance(parent, dict) else None
    value = parent if path == "$this" else named
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return str(value["resourceType"])
    if path == "$this":
        return type_code
    for key in parent if isinstance(parent, dict) else {}:
        suffix = str(key)[len(last) :]
        if str(key).startswith(last) and suffix[:1].isupper():
            return suffix if is_complex(suffix) else suffix[:1].lower() + suffix[1:]
    return declared[0] if value is not None and len(declared) == 1 else None


class Discriminators:
    """Which slice an item of a sliced element belongs to, by the slicing's discriminators."""

    def __init__(self, validator: Validator) -> None:
        self.validator = validator
        # What a slice's rules say at a discriminator's path, found once per (rule, path):
        # rules live as long as the validator.
        self._at: dict[tuple[int, str], Rule | None] = {}
        self._expected: dict[tuple[int, str], tuple[str, Any] | None] = {}  # expected_at's

    @staticmethod
    def type_profile(rule: Rule) -> str | None:
        for t in rule.types:
            for url in t.get("profile", []):
                return str(url)
        return None

    def in_slice(self, slice_rule: Rule, slicing: Json, type_code: str, item: Any) -> bool:
        discriminators = slicing.get("discriminator") or []
        if not discriminators:
            return False
        return all(self.discriminates(slice_rule, d, type_code, item) for d in discriminators)

    def discriminates(
        self, slice_rule: Rule, discriminator: Json, type_code: str, item: Any
    ) -> bool:
        kind, path = discriminator.get("type"), str(discriminator.get("path", "$this"))
        if kind == "type":
            codes = slice_rule.type_codes if path == "$this" else self.codes_at(slice_rule, path)
            name = type_at(item, path, type_code, codes, self.is_complex)
            return isinstance(name, str) and any(self.validator._is_a(name, code) for code in codes)
        if kind == "profile":
            target = item if path == "$this" else walk(item, path)
            profile_urls = [
                u for u in self.profiles_at(slice_rule, path) if self.validator.rule(u) is not None
            ]
            if not isinstance(target, dict):
                return False
            if not profile_urls:  # profiles not loaded: the declared types still discriminate
                return target.get("resourceType") in self.codes_at(slice_rule, path)
            return any(
                not [i for i in self.validator.validate(target, url) if i.is_error]
                for url in profile_urls
            )
        if kind == "exists":
            return (walk(item, path) is not None) == (slice_rule.min > 0)
        if kind in ("value", "pattern"):
            expected = self.expected_at(slice_rule, path)
            if expected is None:
                return False
            actual = item if path == "$this" else walk(item, path)
            return (
                bool(actual == expected[1])
                if kind == "value" and expected[0] == "fixed"
                else matches_pattern(actual, expected[1])
            )
        return False

    def is_complex(self, type_code: str) -> bool:
        return self.validator.definitions.structure(CORE_BASE + type_code) is not None

    def rule_at(self, rule: Rule, path: str) -> Rule | None:
        key = (id(rule), path)
        if key not in self._at:
            self._at[key] = self._rule_at(rule, path)
        return self._at[key]

    def _rule_at(self, rule: Rule, path: str) -> Rule | None:
        current: Rule | None = rule
        for name in path.split("."):
            if current is None:
                return None
            children = self.validator.plans.children_of(current, single_type(current))
            current = (
                current.children.get(name)
                or current.children.get(f"{name}[x]")  # a choice element, by its stem
                or children.get(name)
                or children.get(f"{name}[x]")
            )
        return current

    def expected_at(self, slice_rule: Rule, path: str) -> tuple[str, Any] | None:
        key = (id(slice_rule), path)
        if key not in self._expected:
            self._expected[key] = self._expected_at(slice_rule, path)
        return self._expected[key]

    def _expected_at(self, slice_rule: Rule, path: str) -> tuple[str, Any] | None:
        if path == "$this":
            return slice_rule.fixed_or_pattern()
        if path == "url":  # an extension slice: its url is the profile's canonical
            profile = self.type_profile(slice_rule)
            if profile:
                return "fixed", profile
        target = self.rule_at(slice_rule, path)
        return target.fixed_or_pattern() if target else None

    def codes_at(self, slice_rule: Rule, path: str) -> list[str]:
        target = self.rule_at(slice_rule, path)
        return target.type_codes if target else []

    def profiles_at(self, slice_rule: Rule, path: str) -> list[str]:
        target = slice_rule if path == "$this" else self.rule_at(slice_rule, path)
        if target is None:
            return []
        return [p for t in target.types for p in t.get("profile", []) + t.get("targetProfile", [])]
