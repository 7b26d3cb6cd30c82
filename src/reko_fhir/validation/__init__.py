"""Profile validation: conformance resources (R4 core offline, profiles/, --ig folders),
snapshot generation, and compiled checks. See https://hl7.org/fhir/R4/validation.html.
"""
