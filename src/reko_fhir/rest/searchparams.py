"""What the router serves, as tables: per type its interactions, search parameters (with their
types), ``_sort`` keys, ``_include``s and operations, and the system interactions.

The router refuses what is not in these tables and the CapabilityStatement is generated from
them (:mod:`reko_fhir.rest.capabilities`), so the two cannot disagree
(https://hl7.org/fhir/R4/capabilitystatement.html, https://hl7.org/fhir/R4/search.html).
The parameters are those the store indexes for each type (:mod:`reko_fhir.store.index`), named
and typed as in the R4 definitions (https://hl7.org/fhir/R4/searchparameter-registry.html).
"""

from __future__ import annotations

from reko_fhir.store import DATE_PARAMS

WRITABLE = (
    "Patient",
    "Organization",
    "PractitionerRole",
    "Consent",
    "EpisodeOfCare",
    "CarePlan",
    "Procedure",
    "CareTeam",
    "Communication",
    "Task",  # the early-identification worklist (RekoWorklistTask)
)
READ_ONLY = frozenset({"Provenance"})
RESOURCE_TYPES = frozenset({*WRITABLE, *READ_ONLY})

COMMON = {"_id": "token", "_lastUpdated": "date"}
# Indexed per type (index.tokens/references): a Patient has no status, code or subject.
_TYPED: dict[str, dict[str, str]] = {
    "Patient": {"identifier": "token"},
    "Organization": {"identifier": "token"},
    "PractitionerRole": {"identifier": "token"},
    "Provenance": {},
    "Consent": {"identifier": "token", "status": "token", "category": "token"},
    "EpisodeOfCare": {"identifier": "token", "status": "token"},
    "CarePlan": {
        "identifier": "token",
        "status": "token",
        "category": "token",
        "activity-code": "token",
    },
    "Procedure": {"identifier": "token", "status": "token", "code": "token", "category": "token"},
    "CareTeam": {"identifier": "token", "status": "token", "category": "token"},
    "Communication": {
        "identifier": "token",
        "status": "token",
        "category": "token",
        "recipient": "reference",
    },
    # Custom: the worklist's sick leave (index.TASK_DATE_INPUTS / TASK_NUMBER_INPUTS).
    "Task": {
        "identifier": "token",
        "status": "token",
        "code": "token",
        "owner": "reference",
        "sick-leave-start": "date",
        "sick-leave-length": "number",
    },
}
# Where each type names its patient: ``patient`` (and ``subject`` when the element is one).
_PATIENT_ELEMENT = {
    "Consent": "patient",
    "EpisodeOfCare": "patient",
    "CarePlan": "subject",
    "Procedure": "subject",
    "CareTeam": "subject",
    "Communication": "subject",
    "Task": "for",  # R4: Task's ``patient`` and ``subject`` both search Task.for
}

RESOURCE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
READ_INTERACTIONS = ("read", "vread", "history-instance", "history-type", "search-type")
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system")
# Result parameters (https://hl7.org/fhir/R4/search.html#return) every search takes.
RESULT_PARAMS = {
    "_count": "number",
    "_offset": "number",
    "_sort": "special",
    "_total": "token",
    "_summary": "token",
    "_include": "special",
}
# The access log (rest/access_log.py): read and searched, never written.
AUDIT_SEARCH = {"patient": "reference", "date": "date"}
AUDIT_INTERACTIONS = ("read", "search-type")
OPERATIONS = {
    "validate": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "everything": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
}

# The KVÅ statistics (rest/measure.py): read the Measure, evaluate it. The counts are those of
# searches of these types, so evaluating needs the scopes to search them.
MEASURE_INTERACTIONS = ("read",)
MEASURE_OPERATIONS = {
    "evaluate-measure": "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure"
}
MEASURE_COUNTS = ("Procedure", "EpisodeOfCare", "Communication")


def patient_element(kind: str) -> str | None:
    """The element naming the patient a ``kind`` is about (None: it names none)."""
    return _PATIENT_ELEMENT.get(kind)


def search_parameters(kind: str) -> dict[str, str]:
    """name → type of every search parameter a search of ``kind`` applies."""
    params = {**COMMON, **_TYPED.get(kind, {})}
    element = patient_element(kind)
    if element is not None:
        params["patient"] = "reference"
        if element in ("subject", "for"):
            params["subject"] = "reference"
    for name in sorted({param for param, _ in DATE_PARAMS.get(kind, ())}):
        params[name] = "date"
    return params


def chains(kind: str) -> list[str]:
    """Chained parameters: ``patient.identifier`` (and ``subject.identifier``)."""
    return [
        f"{name}.identifier"
        for name, t in search_parameters(kind).items()
        if t == "reference" and name not in ("recipient", "owner")
    ]


def applies(kind: str, name: str) -> bool:
    """Whether ``name`` (as sent, modifier included) is a parameter a search of ``kind`` applies;
    no modifier is supported, so ``status:missing`` is not."""
    return name in search_parameters(kind) or name in chains(kind)


def sort_keys(kind: str) -> list[str]:
    """``_sort`` takes every date, number and token parameter of ``kind``."""
    return [n for n, t in search_parameters(kind).items() if t in ("date", "number", "token")]


def includes_of(kind: str) -> list[str]:
    """The ``_include`` values a search of ``kind`` serves: the patient its matches name."""
    element = patient_element(kind)
    if element is None:
        return []
    return [f"{kind}:{name}" for name in ("patient", "subject") if name in search_parameters(kind)]


def interactions(kind: str) -> tuple[str, ...]:
    if kind in READ_ONLY:
        return READ_INTERACTIONS
    return RESOURCE_INTERACTIONS if kind in RESOURCE_TYPES else ()


def operations(kind: str) -> list[str]:
    """Type- and instance-level operations of ``kind`` (``$validate``, ``$everything``)."""
    if kind not in WRITABLE:
        return []
    return ["validate", "everything"] if kind == "Patient" else ["validate"]
