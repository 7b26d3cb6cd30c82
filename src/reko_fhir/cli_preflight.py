"""What every ``reko-fhir`` command checks before it starts: settings, targets, profiles.

A bad configuration is one line on stderr naming the file (or variable) and the problem, and exit
2 — the same for ``serve``, ``worker``, ``pull`` and every other command, before any of them opens
a store, binds a port or prints a traceback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import ValidationError

from reko_fhir.config import Settings
from reko_fhir.delivery.config import (
    AnyTargetConfig,
    PrivateKeyJwt,
    TargetConfig,
    TargetConfigError,
    Tls,
    load_targets,
)
from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.package_data import PROFILES_DIR


class ConfigurationError(Exception):
    """A configuration no command may start with; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # YAML and pydantic messages span lines


def check_configuration() -> Settings:
    """The settings, once the targets they name load and the reko profiles are there."""
    settings = _settings()
    try:
        configs = load_targets(settings.targets_file, settings.targets)
    except TargetConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    _check_targets(configs, str(settings.targets_file or "REKO_TARGETS"))
    _check_national(settings.national_file)
    check_profiles()
    return settings


def check_profiles() -> None:
    """The reko FHIR package ships inside reko_fhir: without it every write would validate
    against the base spec alone, so nothing starts (``validation.service.reko_definitions``)."""
    if not (PROFILES_DIR / "StructureDefinition-RekoPatient.json").is_file():
        raise ConfigurationError(
            f"no reko profiles in {PROFILES_DIR}: the installation is incomplete "
            "(reinstall reko-fhir); refusing to validate against nothing"
        )


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"REKO_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"environment: {problems}") from None


def _check_targets(configs: list[AnyTargetConfig], where: str) -> None:
    """Build each target as the worker would: key files, TLS files and secrets must load."""
    if not configs:
        return
    from reko_fhir.delivery.targets import build_target  # noqa: PLC0415 - httpx only when needed

    for config in configs:
        for name, path in _files_of(config):
            if not path.is_file():
                raise ConfigurationError(
                    f"{where}: target {config.name}: {name} {path}: no such file"
                )
        try:
            target = build_target(config)
        except DeliveryError as exc:
            raise ConfigurationError(f"{where}: target {config.name}: {exc.reason}") from None
        except (OSError, ValueError, TypeError) as exc:  # unreadable or malformed key files
            raise ConfigurationError(f"{where}: target {config.name}: {exc}") from None
        asyncio.run(target.aclose())


def _check_national(path: Path | None) -> None:
    """The national file loads and its client certificates load (``delivery/national.py``)."""
    if path is None:
        return
    from reko_fhir.delivery.national import (  # noqa: PLC0415 - httpx only when needed
        CONTRACTS,
        NationalConfigError,
        http_client,
        load_national,
    )

    try:
        national = load_national(path)
    except NationalConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    for contract in CONTRACTS:
        endpoint = national.endpoint(contract)
        if endpoint is None:
            continue
        try:
            client = http_client(endpoint)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a bad key or PEM
            raise ConfigurationError(f"{path}: {contract}.tls: {exc}") from None
        asyncio.run(client.aclose())


def _files_of(config: AnyTargetConfig) -> list[tuple[str, Path]]:
    """The files a target reads (keys, certificates), named as in the targets file."""
    named: list[tuple[str, Path | None]] = []
    if isinstance(config, TargetConfig) and isinstance(config.auth, PrivateKeyJwt):
        named.append(("auth.key_file", config.auth.key_file))
    if config.tls is not None:
        named += [(f"tls.{field}", getattr(config.tls, field)) for field in Tls.model_fields]
    return [(name, path) for name, path in named if path is not None]
