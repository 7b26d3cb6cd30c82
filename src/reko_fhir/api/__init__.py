"""HTTP for the FHIR router: FastAPI routes that only translate (``create_app``)."""

from reko_fhir.api.app import create_app

__all__ = ["create_app"]
