"""Targets built from their configuration: an httpx client each (auth, mutual TLS, timeout)
and the adapter that turns an outbox message into requests.

An EHR FHIR server receives each resource as a conditional update on its business identifier
(https://hl7.org/fhir/R4/http.html#cond-update), so a message delivered twice changes nothing
the second time; a deletion is a conditional delete on the same identifier. References to
types the target does not receive go as logical references (``Reference.identifier``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from reko_fhir.delivery.access_log import build_storelog
from reko_fhir.delivery.auth import ClientCredentialsAuth, PrivateKeyJwtAuth, client_for
from reko_fhir.delivery.config import (
    AnyTargetConfig,
    ClientCredentials,
    PrivateKeyJwt,
    StoreLogTargetConfig,
)
from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.fhir import FhirTarget, identifier_token
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.worker import Delivered, Target
from reko_fhir.mapping.references import display_only, literal_references, rename_references
from reko_fhir.store.outbox import Message
from reko_fhir.store.repository import Json


@dataclass(slots=True)
class FhirDelivery:
    """An EHR FHIR server as an outbox target.

    Workers deliver to it in its ``slots``: at most ``concurrency`` at a time, however many
    workers share it, as many as its client keeps connections alive, so no request waits in
    httpx's pool (where a queue costs every request a scan of all connections).
    """

    name: str
    policy: RetryPolicy
    external_recipient: str | None
    fhir: FhirTarget
    client: httpx.AsyncClient

    subscribed: frozenset[str] = frozenset()
    concurrency: int = 8
    slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    async def deliver(
        self, message: Message, references: Mapping[str, str], logical: Mapping[str, Json]
    ) -> Delivered:
        if message.operation == "delete":
            return await self._delete(message, references)
        if message.payload is None:
            raise DeliveryError("the message carries no resource", retryable=False)
        resource = outgoing(message.payload)
        unresolved = literal_references(resource) - set(references) - set(logical)
        missing = sorted(ref for ref in unresolved if self.receives(ref.split("/", 1)[0]))
        if missing:
            # Its patient (or organisation) has not reached the target yet: wait for it, so
            # the target never holds a reference to nothing.
            raise DeliveryError(
                f"{', '.join(missing[:3])} has not reached {self.name} yet", retryable=True
            )
        # A type the target never receives, with no identifier to name it by: keep the
        # reference's display (and type) only, never our id, which means nothing there.
        renamed = rename_references(resource, references, logical)
        result = await self.fhir.push(display_only(renamed, unresolved))
        remote = f"{result.resource_type}/{result.id}" if result.id else None
        return Delivered(remote, result.status)

    def receives(self, resource_type: str) -> bool:
        return not self.subscribed or resource_type in self.subscribed

    async def _delete(self, message: Message, references: Mapping[str, str]) -> Delivered:
        """A conditional delete by the business identifier of what was deleted here; without
        one, a delete by the target's id; never delivered (no id known): nothing to do."""
        token = identifier_token(message.payload or {})
        if token is not None:
            return Delivered(None, await self.fhir.delete_match(message.resource_type, token))
        remote = references.get(f"{message.resource_type}/{message.resource_id}")
        if remote is None:
            return Delivered(None)
        kind, rid = remote.split("/", 1)
        return Delivered(None, await self.fhir.delete(kind, rid))

    async def aclose(self) -> None:
        await self.client.aclose()


def outgoing(payload: Json) -> Json:
    """The resource as a target receives it: its ``meta.profile`` (and security labels, tags)
    kept, which the target may validate against; our version and timestamps dropped, as the
    target keeps its own (https://hl7.org/fhir/R4/resource.html#Meta)."""
    resource = {k: v for k, v in payload.items() if k != "meta"}
    meta = {
        k: v for k, v in (payload.get("meta") or {}).items() if k in ("profile", "security", "tag")
    }
    return (resource | {"meta": meta}) if meta else resource


def _auth(config: ClientCredentials | PrivateKeyJwt | None) -> httpx.Auth | None:
    if config is None:
        return None
    if isinstance(config, ClientCredentials):
        secret = os.environ.get(config.client_secret_env)
        if not secret:
            raise DeliveryError(
                f"the environment variable {config.client_secret_env} holds no client secret",
                retryable=False,
                kind="config",
            )
        return ClientCredentialsAuth(config.token_url, config.client_id, secret, config.scope)
    return PrivateKeyJwtAuth(
        config.token_url,
        config.client_id,
        config.key_file.read_bytes(),
        config.kid,
        algorithm=config.algorithm,
        scope=config.scope,
    )


def build_target(config: AnyTargetConfig) -> Target:
    if isinstance(config, StoreLogTargetConfig):
        return build_storelog(config)
    tls = config.tls
    client = client_for(
        config.base_url,
        cert_file=tls.cert_file if tls else None,
        key_file=tls.key_file if tls else None,
        ca_file=tls.ca_file if tls else None,
        timeout=config.timeout,
        auth=_auth(config.auth),
        concurrency=config.concurrency,
    )
    return FhirDelivery(
        config.name,
        config.retry.policy(),
        config.external_recipient,
        FhirTarget(client, config.base_url, name=config.name),
        client,
        frozenset(config.resource_types),
        config.concurrency,
    )


def build_targets(configs: Sequence[AnyTargetConfig]) -> dict[str, Target]:
    return {config.name: build_target(config) for config in configs}
