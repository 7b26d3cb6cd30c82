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

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: aiosqlite for the embedded file, psycopg for PostgreSQL."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'reko.sqlite3'}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
