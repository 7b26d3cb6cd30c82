"""Targets built from their configuration: an httpx client each (auth, mutual TLS, timeout)
and the adapter that turns an outbox message into requests.

An EHR FHIR server receives each resource as a conditional update on its business identifier
(https://hl7.org/fhir/R4/http.html#cond-update), so a message delivered twice changes nothing
the second time; a deletion is a delete of the same resource.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from reko_fhir.delivery.auth import ClientCredentialsAuth, PrivateKeyJwtAuth, client_for
from reko_fhir.delivery.config import ClientCredentials, PrivateKeyJwt, TargetConfig
from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.fhir import FhirTarget
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.worker import Target
from reko_fhir.mapping.references import literal_references, rename_references
from reko_fhir.store.outbox import Message
from reko_fhir.store.repository import Json


@dataclass(slots=True)
class FhirDelivery:
    """An EHR FHIR server as an outbox target."""

    name: str
    policy: RetryPolicy
    external_recipient: str | None
    fhir: FhirTarget
    client: httpx.AsyncClient

    subscribed: frozenset[str] = frozenset()

    async def deliver(
        self, message: Message, references: Mapping[str, str], logical: Mapping[str, Json]
    ) -> str | None:
        local = f"{message.resource_type}/{message.resource_id}"
        if message.operation == "delete":
            remote = references.get(local)
            if remote is not None:  # never delivered: nothing to delete there
                kind, rid = remote.split("/", 1)
                await self.fhir.delete(kind, rid)
            return None
        if message.payload is None:
            raise DeliveryError("the message carries no resource", retryable=False)
        resource = {k: v for k, v in message.payload.items() if k != "meta"}
        missing = sorted(
            ref
            for ref in literal_references(resource) - set(references) - set(logical)
            if ref.split("/", 1)[0] in self.subscribed or not self.subscribed
        )
        if missing:
            # Its patient (or organisation) has not reached the target yet: wait for it, so
            # the target never holds a reference to nothing.
            raise DeliveryError(
                f"{', '.join(missing[:3])} has not reached {self.name} yet", retryable=True
            )
        result = await self.fhir.push(rename_references(resource, references, logical))
        return f"{result.resource_type}/{result.id}" if result.id else None

    async def aclose(self) -> None:
        await self.client.aclose()


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


def build_target(config: TargetConfig) -> Target:
    tls = config.tls
    client = client_for(
        config.base_url,
        cert_file=tls.cert_file if tls else None,
        key_file=tls.key_file if tls else None,
        ca_file=tls.ca_file if tls else None,
        timeout=config.timeout,
        auth=_auth(config.auth),
    )
    return FhirDelivery(
        config.name,
        config.retry.policy(),
        config.external_recipient,
        FhirTarget(client, config.base_url, name=config.name),
        client,
        frozenset(config.resource_types),
    )


def build_targets(configs: list[TargetConfig]) -> dict[str, Target]:
    return {config.name: build_target(config) for config in configs}
