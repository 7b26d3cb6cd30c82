"""Journal-system exports → the coordination domain, driven by declarative mapping files.

A mapping file (``mappings/*.yaml``) names the reader (JSON, XML or CSV), where each record and
field is, and the translation tables from local wording to the contract's codes. Adding a
journal system means adding a file; see ``mappings/README.md``.
"""

from reko_fhir.mapping.journal.engine import MappingResult, map_export, map_file
from reko_fhir.mapping.journal.issues import MappingIssue, MappingSpecError, Severity
from reko_fhir.mapping.journal.spec import (
    MappingSpec,
    load_mapping,
    resolve_mapping_path,
    shipped_mappings,
)

__all__ = [
    "MappingIssue",
    "MappingResult",
    "MappingSpec",
    "MappingSpecError",
    "Severity",
    "load_mapping",
    "map_export",
    "map_file",
    "resolve_mapping_path",
    "shipped_mappings",
]
