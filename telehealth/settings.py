"""One Settings object, read from ``TELEHEALTH_*`` environment variables.

With nothing set, the service runs on an embedded SQLite file in ``data_dir`` and keeps a
generated signing key beside it, so a newcomer needs no configuration at all. Production sets
``TELEHEALTH_DATABASE_URL=postgresql+asyncpg://...`` and ``TELEHEALTH_SECRET_KEY``.
"""

from __future__ import annotations

import os
import secrets
import time
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="TELEHEALTH_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite file and keys live")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite in data_dir"
    )
    secret_key: str = Field(default="", description="Token signing key; generated if empty")
    public_base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    timezone: str = "Asia/Ho_Chi_Minh"
    default_language: str = "vi"

    access_token_ttl_s: int = Field(default=900, ge=30)
    refresh_token_ttl_s: int = Field(default=8 * 3600, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: int = Field(default=15 * 60, ge=1)

    db_pool_size: int = Field(default=10, ge=1)
    db_echo: bool = False
    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'telehealth.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def signing_key(self) -> str:
        """The configured key, or one generated once and kept in ``data_dir``."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret.key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: of processes starting together, one writes the key and all read it.
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):
                key = key_file.read_text().strip()
                if key:
                    return key
                time.sleep(0.01)  # the writer is between creating and writing it
            raise RuntimeError(
                f"{key_file} is empty; delete it or set TELEHEALTH_SECRET_KEY"
            ) from None
        key = secrets.token_urlsafe(48)
        with os.fdopen(descriptor, "w") as sink:
            sink.write(key)
        return key
