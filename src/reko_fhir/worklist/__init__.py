"""The early-identification worklist (arbetslista för tidig identifiering, contract 2).

From a care unit's sick-leave certificates, one ``RekoWorklistTask`` per patient and sick leave
(*sjukfall*) that is a candidate for coordination at the unit; the Tasks close by themselves.
It joins the domain's chaining to the FHIR router and writes through the guard as the unit
(partitions, Provenance and the access log apply), so it sits beside the CLI and ``pull``:
no inner layer imports it.
"""

from reko_fhir.worklist.importing import (
    WorklistChanges,
    WorklistSettings,
    import_sick_leaves,
)
from reko_fhir.worklist.listing import WorklistRow, read_worklist

__all__ = [
    "WorklistChanges",
    "WorklistRow",
    "WorklistSettings",
    "import_sick_leaves",
    "read_worklist",
]
