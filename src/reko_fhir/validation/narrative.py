"""txt-1 and txt-2, the narrative's XHTML rules behind FHIRPath's ``htmlChecks()``.

R4 gives both invariants the expression ``htmlChecks()``, a function fhirpathpy does not have.
The rules: https://hl7.org/fhir/R4/narrative.html#xhtml — the div is XHTML (namespace
``http://www.w3.org/1999/xhtml``) with only the basic formatting elements and attributes of
HTML 4.0 chapters 7-11 and 15, ``<a>``, images and style attributes: no scripts, forms, frames,
event handlers (``on…``) or processing instructions (txt-1); and it has some non-whitespace
content (txt-2). The element and attribute lists follow the HL7 reference validator's.
"""

from __future__ import annotations

import html.entities
import re
from functools import lru_cache

from lxml import etree

XHTML = "http://www.w3.org/1999/xhtml"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ELEMENTS = _words(
    "p br div h1 h2 h3 h4 h5 h6 a span b em i strong small big tt dfn q var abbr acronym cite"
    " blockquote hr address bdo kbd sub sup ul ol li dl dt dd pre table caption colgroup col"
    " thead tr tfoot tbody th td code samp img map area"
)
_ATTRIBUTES = _words(
    "title style class id lang dir accesskey tabindex colspan rowspan abbr axis headers scope"
    " border cellpadding cellspacing frame rules summary width valign align char charoff span"
    " height alt datetime cite start type compact value longdesc usemap coords shape nohref name"
    " href src"
)
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"lt", "gt", "amp", "quot", "apos"})


def _numeric_entities(text: str) -> str:
    """HTML's named entities (``&nbsp;``) as character references: XML knows only five."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _XML_ENTITIES or name not in html.entities.name2codepoint:
            return match.group(0)
        return f"&#{html.entities.name2codepoint[name]};"

    return _ENTITY.sub(replace, text)


@lru_cache(maxsize=256)
def problems(div: str) -> tuple[str | None, bool]:
    """(what breaks txt-1 or None, whether the div has content for txt-2)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(_numeric_entities(div).encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        return f"the div is not well-formed XHTML ({exc})", False
    content = any(str(t).strip() for t in root.itertext()) or any(
        isinstance(e.tag, str) and etree.QName(e).localname == "img" for e in root.iter()
    )
    if root.tag != f"{{{XHTML}}}div":
        return "the narrative is not an XHTML div", content
    for element in root.iter():
        if not isinstance(element.tag, str):
            if isinstance(element, etree._ProcessingInstruction):
                return "a processing instruction in the narrative", content
            continue  # comments
        name = etree.QName(element)
        if name.namespace != XHTML or name.localname not in _ELEMENTS:
            return f"element <{name.localname}> is not allowed in a narrative", content
        for attribute in element.attrib:
            local = etree.QName(attribute).localname if attribute != _XML_LANG else "lang"
            if attribute != _XML_LANG and (
                etree.QName(attribute).namespace or local not in _ATTRIBUTES
            ):
                return f"attribute '{local}' on <{name.localname}> is not allowed", content
    return None, content


def txt_1(div: object) -> bool | None:
    """Only the allowed XHTML; None (not decided) for a div that is not a string."""
    return problems(div)[0] is None if isinstance(div, str) else None


def txt_2(div: object) -> bool | None:
    """Some non-whitespace content (text or an image)."""
    return problems(div)[1] if isinstance(div, str) else None
