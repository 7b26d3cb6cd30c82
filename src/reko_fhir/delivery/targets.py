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
from reko_fhir.delivery.fhir import FhirTarget, PushResult, Write, identifier_token
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.worker_types import Delivered, Outgoing, Target
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
        write = self.write(message, references, logical)
        if write is None:
            return Delivered(None)
        return _delivered(write, await self.fhir.send(write))

    def write(
        self, message: Message, references: Mapping[str, str], logical: Mapping[str, Json]
    ) -> Write | None:
        """The one write that delivers ``message`` (None: a deletion with nothing to do)."""
        if message.operation == "delete":
            return self._deletion(message, references)
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
        return self.fhir.upsert(display_only(renamed, unresolved))

    def receives(self, resource_type: str) -> bool:
        return not self.subscribed or resource_type in self.subscribed

    def _deletion(self, message: Message, references: Mapping[str, str]) -> Write | None:
        """A conditional delete by the business identifier of what was deleted here; without
        one, a delete by the target's id; never delivered (no id known): nothing to do."""
        token = identifier_token(message.payload or {})
        if token is not None:
            return self.fhir.deletion(message.resource_type, token=token)
        remote = references.get(f"{message.resource_type}/{message.resource_id}")
        if remote is None:
            return None
        kind, rid = remote.split("/", 1)
        return self.fhir.deletion(kind, resource_id=rid)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass(slots=True)
class FhirBatchDelivery(FhirDelivery):
    """An EHR FHIR server that takes ``batch`` Bundles (``batch`` in the targets file): the
    worker hands it up to ``batch_size`` messages, at most one per patient, and it sends their
    writes in one ``POST [base]`` (https://hl7.org/fhir/R4/http.html#transaction). FHIR does
    not order a batch's entries; one per patient keeps each patient's order."""

    batch_size: int = 50
    discloses: bool = True

    async def deliver_batch(self, batch: Sequence[Outgoing]) -> list[Delivered | Exception | None]:
        """Per message: delivered, or the error of its own entry, or of the whole request
        (transport, a non-2xx status, an answer that is no batch-response of as many entries),
        which all its messages share. A lone write goes as the plain request it would be."""
        results: list[Delivered | Exception | None] = [None] * len(batch)
        writes: list[Write] = []
        at: list[int] = []
        for n, item in enumerate(batch):
            try:
                write = self.write(item.message, item.references, item.logical)
            except Exception as exc:  # this message's own failure
                results[n] = exc
                continue
            if write is None:
                results[n] = Delivered(None)
            else:
                writes.append(write)
                at.append(n)
        if not writes:
            return results
        try:
            if len(writes) == 1:
                answers: list[PushResult | DeliveryError] = [await self.fhir.send(writes[0])]
            else:
                answers = await self.fhir.push_batch(writes)
        except Exception as exc:  # the request failed: each of its messages with it
            for n in at:
                results[n] = exc
            return results
        for n, write, answer in zip(at, writes, answers, strict=True):
            results[n] = answer if isinstance(answer, Exception) else _delivered(write, answer)
        return results


def _delivered(write: Write, result: PushResult) -> Delivered:
    """What the worker records: the resource's ``Type/id`` at the target (for an upsert whose
    answer named it) and the status."""
    if write.method == "PUT" and result.id:
        return Delivered(f"{result.resource_type}/{result.id}", result.status)
    return Delivered(None, result.status)


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
    fhir = FhirTarget(client, config.base_url, name=config.name)
    policy, types = config.retry.policy(), frozenset(config.resource_types)
    if config.batch:
        return FhirBatchDelivery(
            config.name,
            policy,
            config.external_recipient,
            fhir,
            client,
            types,
            config.concurrency,
            batch_size=config.batch,
        )
    return FhirDelivery(
        config.name, policy, config.external_recipient, fhir, client, types, config.concurrency
    )


def build_targets(configs: Sequence[AnyTargetConfig]) -> dict[str, Target]:
    return {config.name: build_target(config) for config in configs}
