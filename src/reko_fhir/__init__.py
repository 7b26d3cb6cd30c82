"""reko-fhir: koordineringsinsatser for sick-listed patients as HL7 FHIR R4."""

__version__ = "0.1.0"
