"""Settings from the environment (prefix ``REKO_``), read once by ``create_app`` and the CLI.

https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REKO_")

    data_dir: Path = Path(".reko")
    """Where the embedded default keeps its SQLite file (and, later, keys)."""
    database_url: str | None = None
    """``postgresql://…`` switches from the embedded SQLite file to PostgreSQL."""
    targets_file: Path | None = None
    """The delivery targets (YAML/JSON, see :mod:`reko_fhir.delivery.config`)."""
    targets: str | None = None
    """Targets inline, the same document as the file (for container environments)."""
    national_file: Path | None = None
    """The national services: RIVTA endpoints, mTLS, schedule (``delivery/national.py``)."""
    workers: int = 1
    """Delivery workers inside ``reko-fhir serve`` (0: run ``reko-fhir worker`` apart)."""
    worker_batch: int = 64
    """Messages a worker claims (and delivers concurrently) per pass."""
    worker_lease_seconds: float = 60.0
    """How long a claimed message stays a worker's; a killed worker's messages return after."""
    delivered_retention_days: float = 7.0
    """Delivered outbox messages are kept this long (for `reko-fhir outbox show`)."""
    dead_retention_days: float = 30.0
    """Dead letters are kept this long unless replayed or purged."""

    jwks_file: Path | None = None
    """The keys tokens are checked against (a JWKS document); required off loopback."""
    jwks_url: str | None = None
    """The identity provider's JWKS endpoint, instead of a file (keys are cached, refetched
    for an unknown ``kid``)."""
    token_issuer: str | None = None
    """The ``iss`` tokens must carry (with JWKS; the local key's issuer is fixed)."""
    token_audience: str = "reko-fhir"  # noqa: S105 - an audience name, not a secret
    """The ``aud`` tokens must carry."""
    token_max_lifetime_seconds: float | None = 24 * 3600.0
    """Tokens whose lifetime (``exp`` - ``iat``) is longer are refused (401); unset: no limit."""
    max_body_bytes: int = 10 * 1024 * 1024
    """Larger request bodies are refused with 413 before they are read to the end."""
    max_url_bytes: int = 8 * 1024
    """Longer request targets (path and query) are refused with 414."""
    trust_forwarded: bool = False
    """Build links and ``fullUrl``s from ``X-Forwarded-Proto``/``-Host``/``-Prefix`` (set this
    only behind a proxy that sets them; otherwise a client could choose the links' host)."""

    worklist_max_days_between: int = Field(default=5, ge=0, le=90)
    """Days that may lie between two certificates of one sick leave (Rehabstöd's
    maxAntalDagarMellanIntyg, 0-90)."""
    worklist_focus_days: int = Field(default=90, ge=1, le=3650)
    """How many days from its start a sick leave is a worklist candidate."""

    @property
    def external_keys(self) -> bool:
        """True when tokens are checked against a configured JWKS, not the local key."""
        return self.jwks_file is not None or self.jwks_url is not None

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: aiosqlite for the embedded file, psycopg for PostgreSQL."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'reko.sqlite3'}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
