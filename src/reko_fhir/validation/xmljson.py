"""FHIR XML → FHIR JSON, driven by the R4 definitions rather than by typed models.

A validator must read what it is asked to judge, including resources a strict model parser
refuses (a StructureDefinition without ``name``, an element with a bad value); so this reader
only needs to know, per element, whether it repeats, which type it has, and whether the type
is primitive — all of which the core snapshots say. Unknown elements are kept, so the validator
can report them. https://hl7.org/fhir/R4/xml.html
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from reko_fhir.validation.compiled import Rule, compile_snapshot
from reko_fhir.validation.definitions import CORE_BASE, Definitions
from reko_fhir.validation.primitives import NUMBER_TYPES, is_primitive
from reko_fhir.xmlsafe import parse_xml_safely

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
Json = dict[str, Any]


class FhirXmlReader:
    """Converts FHIR XML documents; type rules are compiled once per type and kept."""

    def __init__(self, definitions: Definitions | None = None) -> None:
        self.definitions = definitions or Definitions.core()
        self._types: dict[str, Rule | None] = {}

    def read(self, data: bytes) -> Json:
        """A resource (JSON form) from XML bytes; raises on unsafe or malformed XML.

        lxml without ``huge_tree`` refuses documents nested deeper than 256 elements, which
        keeps this recursive reader and the validator within the stack.
        """
        return self.resource(parse_xml_safely(data))

    def type_rule(self, name: str) -> Rule | None:
        if name not in self._types:
            structure = self.definitions.base_of_type(name)
            self._types[name] = (
                compile_snapshot(structure["snapshot"]["element"]) if structure else None
            )
        return self._types[name]

    def resource(self, element: Any) -> Json:
        kind = etree.QName(element).localname
        out: Json = {"resourceType": kind}
        self._children(element, self.type_rule(kind), out)
        return out

    def _children(self, element: Any, rule: Rule | None, out: Json) -> None:
        children = self._rule_children(rule)
        for attribute in ("id", "url"):
            if attribute in element.attrib:
                out[attribute] = element.attrib[attribute]
        for child in element:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions
            name = etree.QName(child).localname
            rule_, type_code = _match(children, name)
            value, companion = self._value(child, rule_, type_code)
            repeats = rule_ is None or rule_.max is None or rule_.max > 1
            self._put(out, name, value, companion, repeats)

    def _rule_children(self, rule: Rule | None) -> dict[str, Rule]:
        if rule is None:
            return {}
        if rule.children:
            return rule.children
        codes = rule.type_codes
        if len(codes) == 1 and not is_primitive(codes[0]):
            nested = self.type_rule(codes[0])
            return nested.children if nested else {}
        return {}

    def _value(
        self, child: Any, rule: Rule | None, type_code: str | None
    ) -> tuple[Any, Json | None]:
        if type_code == "xhtml" or etree.QName(child).namespace == XHTML_NS:
            return etree.tostring(child, encoding="unicode", with_tail=False), None
        if type_code and is_primitive(type_code):
            extras: Json = {}
            self._children(child, self.type_rule("Element"), extras)
            extras.pop("url", None)
            raw = child.attrib.get("value")
            return (None if raw is None else _typed(type_code, raw)), (extras or None)
        if type_code in ("Resource", "DomainResource") or (
            rule is not None and _holds_resource(rule)
        ):
            inner = [c for c in child if isinstance(c.tag, str)]
            return (self.resource(inner[0]) if inner else {}), None
        nested_rule = (
            rule
            if rule is not None and rule.children
            else (self.type_rule(type_code) if type_code else None)
        )
        out: Json = {}
        if rule is None and "value" in child.attrib and len(child) == 0:
            return child.attrib["value"], None  # unknown element: kept for the validator to flag
        self._children(child, nested_rule if nested_rule is not None else rule, out)
        return out, None

    @staticmethod
    def _put(out: Json, name: str, value: Any, companion: Json | None, repeats: bool) -> None:
        if repeats:
            out.setdefault(name, []).append(value)
            if companion is not None or f"_{name}" in out:
                extras = out.setdefault(f"_{name}", [None] * (len(out[name]) - 1))
                extras.append(companion)
        else:
            if value is not None:
                out[name] = value
            if companion is not None:
                out[f"_{name}"] = companion


def _holds_resource(rule: Rule) -> bool:
    return any(code in ("Resource", "DomainResource") for code in rule.type_codes)


def _match(children: dict[str, Rule], name: str) -> tuple[Rule | None, str | None]:
    if name in children:
        rule = children[name]
        codes = rule.type_codes
        return rule, codes[0] if codes else None
    for rule in children.values():
        code = rule.choice_type(name)
        if code is not None:
            return rule, code
    return None, None


def _typed(type_code: str, raw: str) -> Any:
    """The JSON value of a primitive written as an XML attribute; bad ones stay text."""
    if type_code == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    if type_code in NUMBER_TYPES:
        try:
            return (
                int(raw)
                if type_code != "decimal"
                else (float(raw) if "." in raw or "e" in raw.lower() else int(raw))
            )
        except ValueError:
            return raw
    return raw


CORE_XML_READER: FhirXmlReader | None = None


def core_reader() -> FhirXmlReader:
    """One reader over the R4 core for the whole process."""
    global CORE_XML_READER  # noqa: PLW0603 - a lazily built process-wide cache
    if CORE_XML_READER is None:
        CORE_XML_READER = FhirXmlReader()
    return CORE_XML_READER


__all__ = ["CORE_BASE", "FhirXmlReader", "core_reader"]
