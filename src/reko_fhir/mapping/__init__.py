"""Domain ⇄ FHIR R4, exactly as the profile contract (``profiles/contract.md``) fixes it.

One module per resource family; :mod:`reko_fhir.mapping.bundle` puts a whole case into one
transaction Bundle and reads it back. ``journal/`` maps journal-system exports to the domain.
"""

from reko_fhir.mapping.bundle import bundle_to_case, case_to_bundle, case_to_bundle_json
from reko_fhir.mapping.fhir_reader import MappingError

__all__ = ["MappingError", "bundle_to_case", "case_to_bundle", "case_to_bundle_json"]
