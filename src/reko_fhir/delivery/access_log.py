"""The access log as an outbox target: AuditEvents to the national log service (StoreLog 2.0).

Each outbox message of a ``kind: storelog`` target holds one AuditEvent
(https://hl7.org/fhir/R4/auditevent.html) whose patient entities carry their personnummer
(:mod:`reko_fhir.store.audit_outbox`); it becomes one StoreLog log post, and the worker sends up
to ``batch_size`` of them in one request. The post's ``logId`` is the AuditEvent's id (as a
UUID), so a resend carries the same id and the log service can take it once by that id.
Result codes other than OK/INFO, SOAP faults and XSD breaches are final (the batch's messages
become dead letters); 5xx and transport failures are retried by the target's policy.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from reko_fhir.delivery.auth import client_for
from reko_fhir.delivery.config import StoreLogTargetConfig
from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.rivta.schemas import RivtaSchemas
from reko_fhir.delivery.rivta.storelog import AccessLogRecord, StoreLogClient
from reko_fhir.delivery.worker_types import Delivered, Outgoing
from reko_fhir.domain import DomainError, HsaId, PatientId
from reko_fhir.mapping.codings import HSA, HSA_RIVTA, PERSONNUMMER, SAMORDNINGSNUMMER
from reko_fhir.store.outbox import Message
from reko_fhir.store.repository import Json

# What was done, in the words of the Swedish PDL log (AuditEvent.action, R4 value set
# https://hl7.org/fhir/R4/valueset-audit-event-action.html).
ACTIVITY = {"C": "Skapa", "R": "Läsa", "U": "Uppdatera", "D": "Radera", "E": "Utföra"}
EXPORT = "110106"  # DICOM "Export": the outbox sent the data to another system
_HSA_SYSTEMS = (HSA, HSA_RIVTA)
_NATIONAL = (PERSONNUMMER, SAMORDNINGSNUMMER)
_ARGS_MAX = 8192


def log_id(event_id: str) -> str:
    """The log post's id: the AuditEvent's uuid4 hex written as a UUID; any other id (≤ 36
    characters kept, longer ones hashed) stays the same on every resend."""
    try:
        return str(uuid.UUID(hex=event_id))
    except ValueError:
        return event_id if len(event_id) <= 36 else str(uuid.uuid5(uuid.NAMESPACE_URL, event_id))


@dataclass(frozen=True, slots=True)
class LogPosts:
    """How AuditEvents become log posts at one log service (from its ``kind: storelog`` entry)."""

    system_id: HsaId
    system_name: str
    care_provider: HsaId
    care_unit: HsaId
    purpose: str
    care_providers: Mapping[str, HsaId] = field(default_factory=dict)

    def record(self, event: Json) -> AccessLogRecord:
        """The log post of ``event`` (raises DomainError/ValueError on an unusable event)."""
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise DomainError("id", "the AuditEvent has no id")
        agents = [a for a in event.get("agent") or [] if isinstance(a, dict)]
        user, user_name = self._user(agents)
        unit = self._unit(agents)
        subtype = ((event.get("subtype") or [{}])[0] or {}).get("code") or "rest"
        action = str(event.get("action") or "E")
        activity = "Utlämna" if subtype == EXPORT else ACTIVITY.get(action, "Utföra")
        patients: list[PatientId] = []
        touched: list[str] = []
        for entity in event.get("entity") or []:
            what = (entity or {}).get("what") or {}
            reference = what.get("reference")
            if isinstance(reference, str):
                touched.append(reference)
            identifier = what.get("identifier") or {}
            if identifier.get("system") in _NATIONAL:
                # A number the store holds is valid; one that is not stays out of the post
                # (its Patient reference is still among the activity's arguments).
                with contextlib.suppress(DomainError):
                    patients.append(PatientId.parse(str(identifier.get("value"))))
        kinds = sorted({r.split("/", 1)[0] for r in touched if not r.startswith("Patient/")})
        outcome = str(event.get("outcome") or "0")
        args = f"outcome {outcome}"
        if event.get("outcomeDesc"):
            args += f" ({event['outcomeDesc']})"
        if touched:
            args += "; " + " ".join(touched)
        return AccessLogRecord(
            log_id=log_id(event_id),
            activity_type=activity,
            time=datetime.fromisoformat(str(event.get("recorded"))),
            purpose=self.purpose,
            user=user,
            care_unit=unit,
            care_provider=self.care_providers.get(unit.value, self.care_provider),
            patients=tuple(dict.fromkeys(patients)),
            system_id=self.system_id,
            system_name=self.system_name,
            resource_type=", ".join(kinds)[:256] or "Patient",
            user_name=user_name,
            activity_level=str(subtype)[:256],
            activity_args=args[:_ARGS_MAX],
        )

    def _user(self, agents: list[Json]) -> tuple[HsaId, str | None]:
        """The requesting agent's HSA-id; a machine client or worker has none: the system
        itself is then the user, named by what the AuditEvent calls it."""
        for agent in agents:
            if agent.get("requestor"):
                who = ((agent.get("who") or {}).get("identifier") or {}).get("value")
                if isinstance(who, str):
                    try:
                        return HsaId(who), None
                    except DomainError:
                        return self.system_id, who[:256] or None
        return self.system_id, None

    def _unit(self, agents: list[Json]) -> HsaId:
        """The care unit the user acted for; the configured unit when none (or no HSA-id)."""
        for agent in agents:
            identifier = (agent.get("who") or {}).get("identifier") or {}
            if agent.get("requestor") or identifier.get("system") not in _HSA_SYSTEMS:
                continue
            try:
                return HsaId(str(identifier.get("value")))
            except DomainError:
                break
        return self.care_unit


@dataclass(slots=True)
class StoreLogDelivery:
    """The national log service as an outbox target; the worker hands it whole batches."""

    name: str
    policy: RetryPolicy
    batch_size: int
    posts: LogPosts
    client: StoreLogClient
    http: httpx.AsyncClient
    external_recipient: str | None = None  # the log is no disclosure to gate on consent
    discloses: bool = False  # shipping the access log is not itself logged

    async def deliver(
        self, message: Message, references: Mapping[str, str], logical: Mapping[str, Json]
    ) -> Delivered:
        failure = (await self.deliver_batch([Outgoing(message, {}, {})]))[0]
        if failure is not None:
            raise failure
        return Delivered(None, 200)

    async def deliver_batch(self, batch: Sequence[Outgoing]) -> list[Exception | None]:
        """Ship ``batch`` in one StoreLog request: per message None (stored) or why not.

        A message that makes no valid log post is refused alone (final); the rest share the
        request's fate."""
        outcome: list[Exception | None] = [None] * len(batch)
        records: list[AccessLogRecord] = []
        sent: list[int] = []
        for n, item in enumerate(batch):
            try:
                records.append(self.posts.record(item.message.payload or {}))
                sent.append(n)
            except (DomainError, ValueError, TypeError, AttributeError) as exc:
                field_name = exc.field if isinstance(exc, DomainError) else type(exc).__name__
                outcome[n] = DeliveryError(
                    f"the AuditEvent makes no StoreLog post ({field_name})", retryable=False
                )
        if records:
            try:
                await self.client.store(records)
            except Exception as exc:
                for n in sent:
                    outcome[n] = exc
        return outcome

    async def aclose(self) -> None:
        await self.http.aclose()


def log_posts(config: StoreLogTargetConfig) -> LogPosts:
    return LogPosts(
        HsaId(config.system_id),
        config.system_name,
        HsaId(config.care_provider),
        HsaId(config.care_unit),
        config.purpose,
        {unit: HsaId(provider) for unit, provider in config.care_providers.items()},
    )


def build_storelog(config: StoreLogTargetConfig) -> StoreLogDelivery:
    tls = config.tls
    http = client_for(
        config.url,
        cert_file=tls.cert_file if tls else None,
        key_file=tls.key_file if tls else None,
        ca_file=tls.ca_file if tls else None,
        timeout=config.timeout,
        accept="text/xml",
    )
    posts = log_posts(config)
    schemas = RivtaSchemas() if config.validate_xsd else None
    client = StoreLogClient(http, config.url, config.logical_address, schemas=schemas)
    return StoreLogDelivery(
        config.name, config.retry.policy(), config.batch_size, posts, client, http
    )
