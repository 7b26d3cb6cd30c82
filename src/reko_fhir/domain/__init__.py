"""The coordination domain: plain typed models, identifiers and invariants. No I/O.

Imports nothing else of the project; everything else imports it.
"""

from reko_fhir.domain.codes import (
    SICK_LEAVE_DEGREES,
    ActivityStatus,
    ActorType,
    CarePlanCategory,
    ConsentChangeKind,
    ConsentForm,
    CoordinationPart,
    KvaCode,
    RekoRole,
    RekoStatus,
)
from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import (
    HsaId,
    OrganisationNumber,
    PatientId,
    PatientIdKind,
    luhn_check_digit,
    mask_patient_ids,
)
from reko_fhir.domain.models import (
    CareTeam,
    CareUnit,
    Consent,
    ConsentChange,
    CoordinationActivity,
    CoordinationCase,
    ExternalActor,
    NoticeToForsakringskassan,
    Patient,
    PlannedActivity,
    ReturnToWorkPlan,
    SickLeavePeriod,
    SourceRef,
    StaffRole,
    TeamMember,
)
from reko_fhir.domain.rules import RuleViolation, consent_violations, focus_warnings

__all__ = [
    "SICK_LEAVE_DEGREES",
    "ActivityStatus",
    "ActorType",
    "CarePlanCategory",
    "CareTeam",
    "CareUnit",
    "Consent",
    "ConsentChange",
    "ConsentChangeKind",
    "ConsentForm",
    "CoordinationActivity",
    "CoordinationCase",
    "CoordinationPart",
    "DomainError",
    "ExternalActor",
    "HsaId",
    "KvaCode",
    "NoticeToForsakringskassan",
    "OrganisationNumber",
    "Patient",
    "PatientId",
    "PatientIdKind",
    "PlannedActivity",
    "RekoRole",
    "RekoStatus",
    "ReturnToWorkPlan",
    "RuleViolation",
    "SickLeavePeriod",
    "SourceRef",
    "StaffRole",
    "TeamMember",
    "consent_violations",
    "focus_warnings",
    "luhn_check_digit",
    "mask_patient_ids",
]
