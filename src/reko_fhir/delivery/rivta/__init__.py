"""RIVTA BP 2.1 clients (SOAP 1.1 over lxml) for the national services.

- :mod:`.sick_leaves`: ListActiveSickLeavesForCareUnit 1.0 (Intygstjänsten, as Rehabstöd asks);
- :mod:`.sick_leave_cases`: ListSickLeavesForCare 1.0 (sick-leave cases of a unit);
- :mod:`.storelog`: StoreLog 2.0 (the national access log);
- :mod:`.soap` envelopes and the call, :mod:`.oids` OID roots <-> FHIR systems,
  :mod:`.schemas` optional XSD validation (mutual-TLS clients come from
  :func:`reko_fhir.delivery.auth.client_for`, as every peer's do).

Diagnoses in sick-leave answers are dropped on import (``rivta/xsd/README.md``).
"""

from reko_fhir.delivery.rivta.oids import fhir_system, oid_root
from reko_fhir.delivery.rivta.schemas import RivtaSchemas
from reko_fhir.delivery.rivta.sick_leave_cases import (
    ListSickLeavesForCareClient,
    SickLeaveCase,
    SickLeaveCases,
)
from reko_fhir.delivery.rivta.sick_leaves import (
    ActiveSickLeave,
    ActiveSickLeaves,
    ListActiveSickLeavesForCareUnitClient,
)
from reko_fhir.delivery.rivta.storelog import AccessLogRecord, StoreLogClient, StoreLogResult

__all__ = [
    "AccessLogRecord",
    "ActiveSickLeave",
    "ActiveSickLeaves",
    "ListActiveSickLeavesForCareUnitClient",
    "ListSickLeavesForCareClient",
    "RivtaSchemas",
    "SickLeaveCase",
    "SickLeaveCases",
    "StoreLogClient",
    "StoreLogResult",
    "fhir_system",
    "oid_root",
]
