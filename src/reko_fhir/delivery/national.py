"""The national services, configured in one YAML/JSON file (``REKO_NATIONAL_FILE``).

Each RIVTA contract the sick-leave feed calls has its own endpoint, the LogicalAddress that
routes a care unit's question to its producer (RIVTA BP 2.1: the ``itr:LogicalAddress`` header),
the mutual-TLS certificate it shows, a retry policy (the delivery one: :mod:`.retry`, judged by
:func:`~reko_fhir.delivery.errors.is_retryable`) and XSD validation of every message, on by
default. Example::

    contracts:
      ListActiveSickLeavesForCareUnit:
        base_url: https://ntjp.example.se/vp/clinicalprocess/healthcond/rehabilitation/ListActiveSickLeavesForCareUnit/1/rivtabp21
        logical_addresses: {SE2321000016-E001: SE2321000016-F123}
        tls: {cert_file: certs/reko.pem, key_file: certs/reko.key, ca_file: certs/siths-ca.pem}
        retry: {max_attempts: 4, initial_wait: 1, longest_wait: 30, max_age: 120}
      ListSickLeavesForCare:
        base_url: https://ntjp.example.se/vp/clinicalprocess/healthcond/certificate/ListSickLeavesForCare/1/rivtabp21
        logical_addresses: {SE2321000016-E001: SE2321000016-F123}
        tls: {cert_file: certs/reko.pem, key_file: certs/reko.key, ca_file: certs/siths-ca.pem}
    schedule: {interval_seconds: 3600, units: [SE2321000016-E001], runs_in: worker}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tenacity import AsyncRetrying, RetryCallState

from reko_fhir.delivery.auth import client_for
from reko_fhir.delivery.config import Retry
from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.rivta import (
    ListActiveSickLeavesForCareUnitClient,
    ListSickLeavesForCareClient,
    RivtaSchemas,
)
from reko_fhir.domain import DomainError, HsaId

LIST_ACTIVE = "ListActiveSickLeavesForCareUnit"
LIST_FOR_CARE = "ListSickLeavesForCare"
CONTRACTS = (LIST_ACTIVE, LIST_FOR_CARE)
T = TypeVar("T")

log = structlog.get_logger("reko_fhir.delivery.national")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientCertificate(_Strict):
    """Mutual TLS (RIVTA BP 2.1): our certificate and key, and the CA of the producer's."""

    cert_file: Path
    key_file: Path
    ca_file: Path


class NationalRetry(Retry):
    """The delivery retry policy, with waits fit for a command someone waits on."""

    max_attempts: int = Field(default=4, ge=1, le=100)
    max_age: float = Field(default=120.0, gt=0)
    initial_wait: float = Field(default=1.0, ge=0)
    longest_wait: float = Field(default=30.0, ge=0)


def _hsa(value: str) -> str:
    try:
        HsaId(value)
    except DomainError:
        raise ValueError(f"{value[:40]!r} is no HSA-id") from None
    return value


class ContractEndpoint(_Strict):
    """Where one contract is asked, and how."""

    base_url: str = Field(pattern=r"^https?://")
    logical_addresses: dict[str, str] = Field(min_length=1)
    """Care unit HSA-id -> the LogicalAddress its questions are routed to."""
    tls: ClientCertificate | None = None
    retry: NationalRetry = Field(default_factory=NationalRetry)
    validate_xsd: bool = True
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("logical_addresses")
    @classmethod
    def _units_are_hsa_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for unit, address in value.items():
            _hsa(unit)
            if not address.strip():
                raise ValueError(f"the LogicalAddress of {unit} is empty")
        return value


class Schedule(_Strict):
    """A recurring import of the units' active sick leaves inside one process."""

    interval_seconds: float = Field(ge=1)
    units: list[str] = Field(min_length=1)
    runs_in: Literal["serve", "worker"] = "serve"
    """The one process that imports (two would both write the same Tasks)."""

    @field_validator("units")
    @classmethod
    def _units_are_hsa_ids(cls, value: list[str]) -> list[str]:
        return [_hsa(v) for v in value]


class Contracts(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    list_active: ContractEndpoint | None = Field(
        default=None, alias="ListActiveSickLeavesForCareUnit"
    )
    list_for_care: ContractEndpoint | None = Field(default=None, alias="ListSickLeavesForCare")


class NationalFile(_Strict):
    contracts: Contracts
    schedule: Schedule | None = None

    def endpoint(self, contract: str) -> ContractEndpoint | None:
        return (
            self.contracts.list_active if contract == LIST_ACTIVE else self.contracts.list_for_care
        )


class NationalConfigError(ValueError):
    """The national file cannot be used; the message says where (one line)."""


def load_national(path: Path) -> NationalFile:
    """The national file at ``path`` (YAML or JSON), its schedule's units all routable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NationalConfigError(f"cannot read the national file {path}: {exc}") from None
    try:
        national = NationalFile.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        raise NationalConfigError(f"{path} is not YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise NationalConfigError(f"{path}: {problems}") from None
    schedule = national.schedule
    if schedule is not None:
        active = national.contracts.list_active
        if active is None:
            raise NationalConfigError(f"{path}: schedule: needs contracts.{LIST_ACTIVE}")
        missing = [u for u in schedule.units if u not in active.logical_addresses]
        if missing:
            raise NationalConfigError(
                f"{path}: schedule.units: no {LIST_ACTIVE} logical address for {', '.join(missing)}"
            )
    for contract in CONTRACTS:
        endpoint = national.endpoint(contract)
        for name, file in _files_of(endpoint):
            if not file.is_file():
                raise NationalConfigError(f"{path}: {contract}.{name} {file}: no such file")
    return national


def _files_of(endpoint: ContractEndpoint | None) -> list[tuple[str, Path]]:
    if endpoint is None or endpoint.tls is None:
        return []
    return [(f"tls.{name}", getattr(endpoint.tls, name)) for name in ClientCertificate.model_fields]


class NotConfiguredError(LookupError):
    """The national file names no endpoint for the contract, or no address for the unit."""


def http_client(endpoint: ContractEndpoint) -> httpx.AsyncClient:
    """The endpoint's HTTP client: mutual TLS when configured (the caller closes it).

    Built by :func:`~reko_fhir.delivery.auth.client_for`, as every target's is; a SOAP
    endpoint gets httpx's own ``Accept``. Files it cannot use are a
    :class:`NationalConfigError` (what ``reko-fhir preflight`` reports)."""
    tls = endpoint.tls
    try:
        return client_for(
            endpoint.base_url,
            cert_file=tls.cert_file if tls else None,
            key_file=tls.key_file if tls else None,
            ca_file=tls.ca_file if tls else None,
            timeout=endpoint.timeout,
            accept=None,
        )
    except DeliveryError as exc:
        raise NationalConfigError(str(exc)) from None


class NationalServices:
    """The configured contracts' clients, each call retried by its endpoint's policy."""

    def __init__(self, national: NationalFile, schemas: RivtaSchemas | None = None) -> None:
        self.national = national
        self._schemas = schemas

    def endpoint_for(self, contract: str, unit: HsaId) -> tuple[ContractEndpoint, str]:
        endpoint = self.national.endpoint(contract)
        if endpoint is None:
            raise NotConfiguredError(f"the national file configures no {contract}")
        address = endpoint.logical_addresses.get(unit.value)
        if address is None:
            raise NotConfiguredError(
                f"{contract}: the national file has no logical address for {unit}"
            )
        return endpoint, address

    def schemas(self, endpoint: ContractEndpoint) -> RivtaSchemas | None:
        if not endpoint.validate_xsd:
            return None
        if self._schemas is None:
            self._schemas = RivtaSchemas()
        return self._schemas

    @asynccontextmanager
    async def list_active(
        self, unit: HsaId
    ) -> AsyncIterator[ListActiveSickLeavesForCareUnitClient]:
        endpoint, address = self.endpoint_for(LIST_ACTIVE, unit)
        async with http_client(endpoint) as http:
            yield ListActiveSickLeavesForCareUnitClient(
                http, endpoint.base_url, address, schemas=self.schemas(endpoint)
            )

    @asynccontextmanager
    async def list_for_care(self, unit: HsaId) -> AsyncIterator[ListSickLeavesForCareClient]:
        endpoint, address = self.endpoint_for(LIST_FOR_CARE, unit)
        async with http_client(endpoint) as http:
            yield ListSickLeavesForCareClient(
                http, endpoint.base_url, address, schemas=self.schemas(endpoint)
            )

    async def retried(self, contract: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` under the contract's retry policy: what ``is_retryable`` calls passing
        (refused, reset, timed out, 5xx without a fault) is tried again, the rest raised."""
        endpoint = self.national.endpoint(contract)
        policy = (endpoint.retry if endpoint is not None else NationalRetry()).policy()

        def before_sleep(state: RetryCallState) -> None:
            # The kind of failure, the attempt and the wait: no unit data, no patient.
            failed = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "national.retry",
                contract=contract,
                attempt=state.attempt_number,
                error=type(failed).__name__,
                wait=round(state.upcoming_sleep, 3),
            )

        async def attempt() -> T:  # a coroutine function, so tenacity awaits it
            return await call()

        retrying: AsyncRetrying = policy.retrying().copy(before_sleep=before_sleep)
        result: T = await retrying(attempt)
        return result
