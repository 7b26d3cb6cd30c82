"""Settings from the environment (prefix ``REKO_``), read once by ``create_app`` and the CLI.

https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

from __future__ import annotations

from pathlib import Path

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

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: aiosqlite for the embedded file, psycopg for PostgreSQL."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'reko.sqlite3'}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
