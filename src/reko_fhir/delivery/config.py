"""Delivery targets, configured in one YAML/JSON file (``REKO_TARGETS_FILE``) or ``REKO_TARGETS``.

Example::

    targets:
      - name: ehr-north
        kind: fhir
        base_url: https://ehr.example.se/fhir
        resource_types: [CarePlan, Procedure, Consent]
        auth: {type: private_key_jwt, token_url: https://ehr.example.se/token,
               client_id: reko, key_file: keys/reko.pem, kid: reko-1, scope: system/*.cruds}
        tls: {cert_file: certs/reko.pem, key_file: certs/reko.key, ca_file: certs/ca.pem}
        retry: {max_attempts: 12, max_age: 86400, initial_wait: 0.5, longest_wait: 300}
        concurrency: 8            # deliveries in flight to it at a time (one connection each)
        batch: 50                 # optional: up to 50 writes in one FHIR batch Bundle
      - name: fk-notices
        kind: fhir
        base_url: https://fk.example.se/fhir
        resource_types: [Communication]
        external_recipient: "urn:oid:2.5.4.97|2021005521"   # Försäkringskassan: consent gated
      - name: national-log
        kind: storelog            # the access log, to StoreLog 2.0 (delivery/access_log.py)
        url: https://log.example.se/informationsecurity/auditing/log/StoreLog/2/rivtabp21
        logical_address: SE165565594230-1000
        system_id: SE2321000016-SYS1
        care_provider: SE2321000016-VG01
        care_unit: SE2321000016-E001
        batch_size: 100
        tls: {cert_file: certs/reko.pem, key_file: certs/reko.key, ca_file: certs/ca.pem}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.domain import HsaId
from reko_fhir.store.outbox import Subscription


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientCredentials(_Strict):
    """OAuth2 client credentials with a shared secret (read from an environment variable)."""

    type: Literal["client_credentials"]
    token_url: str
    client_id: str
    client_secret_env: str
    scope: str | None = None


class PrivateKeyJwt(_Strict):
    """SMART Backend Services: a signed JWT assertion instead of a secret."""

    type: Literal["private_key_jwt"]
    token_url: str
    client_id: str
    key_file: Path
    kid: str
    algorithm: Literal["RS384", "ES384"] = "RS384"
    scope: str | None = None


class Tls(_Strict):
    """Mutual TLS: the client certificate and key, and the CA that signs the target's."""

    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None


class Retry(_Strict):
    max_attempts: int = Field(default=12, ge=1, le=1000)
    max_age: float = Field(default=24 * 3600.0, gt=0)
    initial_wait: float = Field(default=0.5, ge=0)
    longest_wait: float = Field(default=300.0, ge=0)
    jitter: float = Field(default=0.5, ge=0)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_attempts, self.max_age, self.initial_wait, self.longest_wait, self.jitter
        )


class TargetConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    kind: Literal["fhir"] = "fhir"
    base_url: str = Field(pattern=r"^https?://")
    resource_types: list[str] = []
    external_recipient: str | None = None
    """The organisation this target discloses to (``Organization/…`` or ``system|value``);
    set for every target outside the care unit, whose deliveries then pass the consent gate."""
    timeout: float = Field(default=10.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=256)
    """Deliveries in flight to this target at a time, each on its own kept-alive connection.
    A worker claims no more of its messages than it has free, so none waits past its lease."""
    batch: int | None = Field(default=None, ge=2, le=1000)
    """Send up to ``batch`` writes in one ``batch`` Bundle (``POST [base]``,
    https://hl7.org/fhir/R4/http.html#transaction), each entry the request it would be alone
    and judged on its own entry of the answer; ``concurrency`` batches in flight. Off unless
    set: set it for a target whose CapabilityStatement declares ``batch`` (not discovered)."""
    auth: Annotated[ClientCredentials | PrivateKeyJwt, Field(discriminator="type")] | None = None
    tls: Tls | None = None
    retry: Retry = Field(default_factory=Retry)

    def subscription(self) -> Subscription:
        return Subscription(self.name, frozenset(self.resource_types))


class StoreLogTargetConfig(_Strict):
    """The national log service (StoreLog 2.0) as the access log's target: every AuditEvent
    stored is shipped to it as one log post, ``batch_size`` posts a request."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    kind: Literal["storelog"]
    url: str = Field(pattern=r"^https?://")
    logical_address: str = Field(min_length=1, max_length=256)
    """The receiver of the RIVTA call (``itr:LogicalAddress``), as the service's agreement says."""
    system_id: str
    """This system's HSA-id: the ``system`` of every log post, and its user when no person acted."""
    system_name: str = "reko-fhir"
    care_provider: str
    """The care provider (vårdgivare) HSA-id the logged data belongs to."""
    care_providers: dict[str, str] = {}
    """Care unit HSA-id → its care provider, where a unit belongs to another one."""
    care_unit: str
    """The care unit of accesses made for no unit (the platform, the delivery worker)."""
    purpose: str = Field(default="Vård och behandling", min_length=1, max_length=256)
    batch_size: int = Field(default=100, ge=1, le=1000)
    validate_xsd: bool = True
    """Check each request and answer against the StoreLog XSDs (both are final errors)."""
    timeout: float = Field(default=10.0, gt=0)
    tls: Tls | None = None
    retry: Retry = Field(default_factory=Retry)

    @field_validator("system_id", "care_provider", "care_unit")
    @classmethod
    def _hsa_id(cls, value: str) -> str:
        HsaId(value)  # DomainError is a ValueError: pydantic reports it with the field
        return value

    @field_validator("care_providers")
    @classmethod
    def _hsa_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for unit, provider in value.items():
            HsaId(unit)
            HsaId(provider)
        return value

    def subscription(self) -> Subscription:
        return Subscription(self.name, frozenset(), access_log=True)


def _kind(value: Any) -> str:
    kind = value.get("kind", "fhir") if isinstance(value, dict) else getattr(value, "kind", "fhir")
    return str(kind)


AnyTargetConfig = Annotated[
    Annotated[TargetConfig, Tag("fhir")] | Annotated[StoreLogTargetConfig, Tag("storelog")],
    Discriminator(_kind),
]
"""A target of the targets file, by its ``kind`` (``fhir`` when it names none)."""


class TargetsFile(_Strict):
    targets: list[AnyTargetConfig] = []


class TargetConfigError(ValueError):
    """The targets file cannot be used; the message says where."""


def load_targets(path: Path | None, inline: str | None = None) -> list[AnyTargetConfig]:
    """Targets from ``path`` (YAML or JSON) and/or ``inline`` (the JSON/YAML of REKO_TARGETS)."""
    documents: list[tuple[str, str]] = []
    if path is not None:
        try:
            documents.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise TargetConfigError(f"cannot read the targets file {path}: {exc}") from None
    if inline:
        documents.append(("REKO_TARGETS", inline))
    targets: list[AnyTargetConfig] = []
    for where, text in documents:
        try:
            data = yaml.safe_load(text) or {}
            if isinstance(data, list):
                data = {"targets": data}
            targets += TargetsFile.model_validate(data).targets
        except yaml.YAMLError as exc:
            raise TargetConfigError(f"{where} is not YAML: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
            raise TargetConfigError(f"{where}: {problems}") from None
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        sources = " and ".join(where for where, _ in documents)
        raise TargetConfigError(f"{sources}: target names must be unique: {names}")
    return targets


def _where(loc: tuple[int | str, ...]) -> str:
    """``targets.0.base_url``: the kind's tag pydantic puts after the index is left out."""
    parts = [str(p) for p in loc]
    if len(parts) > 2 and parts[0] == "targets" and parts[2] in ("fhir", "storelog"):
        del parts[2]
    return ".".join(parts)
