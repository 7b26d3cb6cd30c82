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
    # Checked on the raw bytes first, since a DOCTYPE must be refused before anything expands
    # it: anywhere in the document (a long prolog may push it back), and in every encoding
    # libxml2 detects by itself (UTF-16/32 with or without a BOM, EBCDIC).
    if declares_dtd(data):
        raise UnsafeXmlError("XML with a DOCTYPE or entity declarations is not accepted")
    root = etree.fromstring(data, parser=safe_parser())
    # And on the tree, in case an encoding not foreseen above hid the declaration.
    info = root.getroottree().docinfo
    if getattr(info, "doctype", "") or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeXmlError("XML with a DOCTYPE is not accepted")
    return root


_DECLARATIONS = ("<!DOCTYPE", "<!ENTITY", "<!ELEMENT", "<!ATTLIST")
_ENCODINGS = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037", "cp500")
_PATTERNS = tuple(
    {d.encode(encoding) for d in _DECLARATIONS for encoding in _ENCODINGS}
    - {d.encode("ascii") for d in _DECLARATIONS}
)


def declares_dtd(data: bytes) -> bool:
    """Whether ``data`` holds a markup declaration, in ASCII-compatible or a wide encoding.

    Declarations are case-sensitive in XML; the ASCII check ignores case all the same.
    """
    upper = data.upper()
    if any(d.encode("ascii") in upper for d in _DECLARATIONS):
        return True
    return any(pattern in data for pattern in _PATTERNS)
