"""Client of StoreLog 2.0 (informationsecurity:auditing:log): the national access log.

Patientdatalagen (2008:355) 4 kap. 3 § requires every access to patient data to be logged;
StoreLog ships one or more log posts (``LogType``: ``logId``, ``system``, ``activity``,
``user``, ``resources``). Contract: ``StoreLogResponder_2.0.xsd`` and
``informationsecurity_auditing_log_2.0.xsd``. Result codes other than OK and INFO mean that
nothing was stored (the schema says so), so they raise a final :class:`DeliveryError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.rivta.oids import patient_root
from reko_fhir.delivery.rivta.reading import child, text
from reko_fhir.delivery.rivta.schemas import STORE_LOG_NS
from reko_fhir.delivery.rivta.soap import RivtaClient
from reko_fhir.domain import DomainError, HsaId, PatientId, mask_patient_ids

NS = STORE_LOG_NS
LOG_NS = "urn:riv:informationsecurity:auditing:log:2"
SOAP_ACTION = f"{NS}:StoreLog"
_ID_MAX = 36  # logId is a UUID, at most 36 characters
_TEXT_MAX = 256  # names, purpose, activity type
_ARGS_MAX = 8192  # ActivityArgs


@dataclass(frozen=True, slots=True)
class AccessLogRecord:
    """One access to patients' data, as a StoreLog ``log`` post.

    ``activity_type`` says what was done (``Läsa``, ``Skriva``…), ``purpose`` why (``Vård och
    behandling``); ``time`` must carry its UTC offset. ``system_id`` is the logging system's
    HSA-id. ``resource_type`` names the kind of data touched. Each of ``patients`` is one
    ``resource`` of the post (a search names several); none gives one resource without a patient.
    ``activity_level`` and ``activity_args`` say more about the activity (the interaction, the
    outcome and the resources touched).
    """

    log_id: str
    activity_type: str
    time: datetime
    purpose: str
    user: HsaId
    care_unit: HsaId
    care_provider: HsaId
    patients: tuple[PatientId, ...]
    system_id: HsaId
    system_name: str | None = None
    resource_type: str = "Koordineringsinsats"
    user_name: str | None = None
    care_unit_name: str | None = None
    care_provider_name: str | None = None
    activity_level: str | None = None
    activity_args: str | None = None

    def __post_init__(self) -> None:
        if not self.log_id.strip() or len(self.log_id) > _ID_MAX:
            raise DomainError("log_id", f"a log id is 1-{_ID_MAX} characters (a UUID)")
        if self.time.utcoffset() is None:
            raise DomainError("time", "the time of an access needs its UTC offset")
        for name in ("activity_type", "purpose", "resource_type"):
            value: str = getattr(self, name)
            if not value.strip() or len(value) > _TEXT_MAX:
                raise DomainError(name, f"is 1-{_TEXT_MAX} characters")
        if self.activity_args is not None and len(self.activity_args) > _ARGS_MAX:
            raise DomainError("activity_args", f"is at most {_ARGS_MAX} characters")
        optional_texts = ("system_name", "user_name", "care_unit_name", "care_provider_name")
        for name in (*optional_texts, "activity_level"):
            optional: str | None = getattr(self, name)
            if optional is not None and (not optional.strip() or len(optional) > _TEXT_MAX):
                raise DomainError(name, f"is 1-{_TEXT_MAX} characters when given")


@dataclass(frozen=True, slots=True)
class StoreLogResult:
    """A successful StoreLog: ``OK``, or ``INFO`` with the message the user must see."""

    result_code: str
    message: str | None = None


def _sub(parent: etree._Element, name: str, value: str | None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{LOG_NS}}}{name}")
    if value is not None:
        element.text = value
    return element


def _party(parent: etree._Element, name: str, hsa: HsaId, label: str | None) -> None:
    # CareProviderType / CareUnitType share their shape: <xId/> then an optional <xName/>.
    element = _sub(parent, name, None)
    _sub(element, f"{name}Id", hsa.value)
    if label is not None:
        _sub(element, f"{name}Name", label)


def _log_post(parent: etree._Element, record: AccessLogRecord) -> None:
    post = etree.SubElement(parent, f"{{{NS}}}log")
    _sub(post, "logId", record.log_id)
    system = _sub(post, "system", None)
    _sub(system, "systemId", record.system_id.value)
    if record.system_name is not None:
        _sub(system, "systemName", record.system_name)
    activity = _sub(post, "activity", None)
    _sub(activity, "activityType", record.activity_type)
    if record.activity_level is not None:
        _sub(activity, "activityLevel", record.activity_level)
    if record.activity_args is not None:
        _sub(activity, "activityArgs", record.activity_args)
    _sub(activity, "startDate", record.time.isoformat())
    _sub(activity, "purpose", record.purpose)
    user = _sub(post, "user", None)
    _sub(user, "userId", record.user.value)
    if record.user_name is not None:
        _sub(user, "name", record.user_name)
    _party(user, "careProvider", record.care_provider, record.care_provider_name)
    _party(user, "careUnit", record.care_unit, record.care_unit_name)
    resources = _sub(post, "resources", None)
    for patient in record.patients or (None,):
        resource = _sub(resources, "resource", None)
        _sub(resource, "resourceType", record.resource_type)
        if patient is not None:
            patient_id = _sub(_sub(resource, "patient", None), "patientId", None)
            _sub(patient_id, "root", patient_root(patient))
            _sub(patient_id, "extension", patient.value)
        # The data belongs to the unit's care provider and unit (PDL's "vårdgivare/vårdenhet").
        _party(resource, "careProvider", record.care_provider, record.care_provider_name)
        _party(resource, "careUnit", record.care_unit, record.care_unit_name)


def build_request(records: Sequence[AccessLogRecord]) -> etree._Element:
    """The ``StoreLog`` request with one ``log`` post per record (at least one)."""
    if not records:
        raise ValueError("StoreLog needs at least one log post")
    request = etree.Element(f"{{{NS}}}StoreLog", nsmap={"ns": NS, "log": LOG_NS})
    for record in records:
        _log_post(request, record)
    return request


def read_response(body: etree._Element) -> StoreLogResult:
    """OK/INFO succeed; every other result code (ERROR, VALIDATION_ERROR, ACCESSDENIED…) is
    final: the log service stored nothing and will not change its mind on a retry."""
    if body.tag != f"{{{NS}}}StoreLogResponse":
        raise DeliveryError(f"expected StoreLogResponse, got {body.tag}", retryable=False)
    result = child(body, NS, "result")
    code = "" if result is None else text(result, LOG_NS, "resultCode") or ""
    message = None if result is None else text(result, LOG_NS, "resultText")
    if code in ("OK", "INFO"):
        return StoreLogResult(code, message)
    said = mask_patient_ids(message or "no resultText")[:500]
    raise DeliveryError(f"StoreLog: resultCode {code or 'missing'}: {said}", retryable=False)


class StoreLogClient(RivtaClient):
    """``StoreLog`` 2.0 over SOAP 1.1 (RIVTA BP 2.1)."""

    soap_action = SOAP_ACTION
    what = "StoreLog"

    async def store(self, records: Sequence[AccessLogRecord]) -> StoreLogResult:
        """Ship ``records`` in one call; raises DeliveryError when nothing was stored."""
        return read_response(await self._call(build_request(records)))
