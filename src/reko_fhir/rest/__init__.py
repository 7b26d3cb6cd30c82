"""FHIR REST semantics over a repository, with no web framework (https://hl7.org/fhir/R4/http.html).

``api/`` translates HTTP to :class:`FhirRequest` and :class:`FhirResponse` back; everything a
FHIR server decides — interactions, status codes, formats, validation — is decided here.
"""

from reko_fhir.rest.messages import FhirRequest, FhirResponse
from reko_fhir.rest.router import FhirRouter

__all__ = ["FhirRequest", "FhirResponse", "FhirRouter"]
