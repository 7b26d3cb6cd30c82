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
      - name: fk-notices
        kind: fhir
        base_url: https://fk.example.se/fhir
        resource_types: [Communication]
        external_recipient: "urn:oid:2.5.4.97|2021005521"   # Försäkringskassan: consent gated
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reko_fhir.delivery.retry import RetryPolicy
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
    auth: Annotated[ClientCredentials | PrivateKeyJwt, Field(discriminator="type")] | None = None
    tls: Tls | None = None
    retry: Retry = Field(default_factory=Retry)

    def subscription(self) -> Subscription:
        return Subscription(self.name, frozenset(self.resource_types))


class TargetsFile(_Strict):
    targets: list[TargetConfig] = []


class TargetConfigError(ValueError):
    """The targets file cannot be used; the message says where."""


def load_targets(path: Path | None, inline: str | None = None) -> list[TargetConfig]:
    """Targets from ``path`` (YAML or JSON) and/or ``inline`` (the JSON/YAML of REKO_TARGETS)."""
    documents: list[tuple[str, str]] = []
    if path is not None:
        try:
            documents.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise TargetConfigError(f"cannot read the targets file {path}: {exc}") from None
    if inline:
        documents.append(("REKO_TARGETS", inline))
    targets: list[TargetConfig] = []
    for where, text in documents:
        try:
            data = yaml.safe_load(text) or {}
            if isinstance(data, list):
                data = {"targets": data}
            targets += TargetsFile.model_validate(data).targets
        except yaml.YAMLError as exc:
            raise TargetConfigError(f"{where} is not YAML: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise TargetConfigError(f"{where}: {problems}") from None
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        sources = " and ".join(where for where, _ in documents)
        raise TargetConfigError(f"{sources}: target names must be unique: {names}")
    return targets
