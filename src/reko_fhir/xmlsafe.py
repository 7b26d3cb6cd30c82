"""Safe XML parsing for everything the project reads: no DTDs, no entities, no network.

Patient data arrives as XML from journal exports, FHIR clients and national services; an
external entity (XXE) could read local files and an entity bomb could exhaust memory, so a
document with a DOCTYPE is refused outright rather than parsed with its declarations ignored.
"""

from __future__ import annotations

from lxml import etree

MAX_XML_BYTES = 10 * 1024 * 1024


class UnsafeXmlError(ValueError):
    """The document declares a DOCTYPE or is too large to parse safely."""


def safe_parser() -> etree.XMLParser:
    """A parser that loads no DTD, resolves no entity, and touches no network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def parse_xml_safely(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse ``data``; raise :class:`UnsafeXmlError` for a DOCTYPE or oversize input.

    Malformed XML raises :class:`lxml.etree.XMLSyntaxError` (which carries a position).
    """
    if len(data) > max_bytes:
        raise UnsafeXmlError(f"the XML document is larger than {max_bytes} bytes")
    # Checked on the raw bytes too, since a DOCTYPE must be refused before anything expands it.
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise UnsafeXmlError("XML with a DOCTYPE or entity declarations is not accepted")
    root = etree.fromstring(data, parser=safe_parser())
    doctype: str = getattr(root.getroottree().docinfo, "doctype", "")
    if doctype:
        raise UnsafeXmlError("XML with a DOCTYPE is not accepted")
    return root
