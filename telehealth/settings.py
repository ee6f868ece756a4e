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

from telehealth.storage import create_private_file, private_data_dir


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
    login_max_failures: int = Field(
        default=5, ge=1, description="failures from one address to one name before it is locked"
    )
    login_address_max_failures: int = Field(
        default=30, ge=1, description="failures from one address to any names before it is"
    )
    login_lockout_s: int = Field(
        default=15 * 60, ge=1, description="how long a lock lasts, and failures are remembered"
    )
    password_min_length: int = Field(
        default=12, ge=8, description="fewest characters of a password with two-factor sign-in"
    )
    password_min_length_without_2fa: int = Field(
        default=16, ge=8, description="fewest characters of a password without two-factor"
    )
    password_history: int = Field(
        default=5, ge=1, le=24, description="a new password may not be one of the last N"
    )
    two_factor_required_for: str = Field(
        default="administrator,coordinator",
        pattern=r"^\s*(all|((requester|specialist|coordinator|administrator)\s*(,\s*|$))*)\s*$",
        description="roles that must sign in with a second factor (comma-separated), or 'all'",
    )
    account_idle_days: int = Field(
        default=45, ge=1, description="a person's account unused this long is disabled"
    )
    web_idle_timeout_s: int = Field(
        default=30 * 60, ge=1, description="a browser session without a page this long ends"
    )
    metrics_token: str = Field(
        default="",
        description="bearer token Prometheus sends to /metrics; empty: administrators only",
    )

    slot_horizon_weeks: int = Field(default=8, ge=1, le=52)
    slot_hold_s: int = Field(default=300, ge=30, le=3600)
    escalate_emergency_s: int = Field(default=10 * 60, ge=60)
    escalate_urgent_s: int = Field(default=60 * 60, ge=60)
    escalate_routine_s: int = Field(default=24 * 3600, ge=60)
    reminder_leads_min: list[int] = Field(
        default_factory=lambda: [1440, 15], description="reminders, minutes before the start"
    )
    no_show_after_s: int = Field(default=15 * 60, ge=60, description="no-show check after start")
    draft_stale_days: int = Field(default=30, ge=1, description="drafts older than this expire")
    # Ten years: Vietnamese law keeps a medical record at least ten years (Law on Medical
    # Examination and Treatment), and the audit of who read it is kept as long as the record.
    audit_retention_days: int = Field(
        default=3650, ge=1, description="audit rows older than this are deleted, daily"
    )

    attachment_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    idempotency_key_ttl_s: int = Field(
        default=24 * 3600, ge=60, description="how long a creating request's answer is replayed"
    )

    db_pool_size: int = Field(default=10, ge=1)
    fhir_read_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="directory resources each process keeps for FHIR reads (PostgreSQL; 0: none)",
    )
    fhir_read_cache_seconds: float = Field(
        default=60.0,
        gt=0,
        description="the longest a cached resource is served without a change being heard",
    )
    db_pool_recycle_s: int = Field(
        default=1800, ge=30, description="connections older than this are replaced"
    )
    db_pool_pre_ping: bool = Field(
        default=False, description="test each pooled connection before use (one more round trip)"
    )
    db_echo: bool = False
    log_level: str = "INFO"

    # Video sessions (telehealth.rtc); see docs/rtc.md.
    redis_url: str = Field(default="", description="Redis for Channels across processes")
    channels_backend: str = Field(
        default="auto", pattern="^(auto|memory|postgres|redis)$", description="auto: by database"
    )
    stun_urls: list[str] = Field(default_factory=list, description="e.g. stun:turn.example.vn")
    turn_urls: list[str] = Field(default_factory=list, description="e.g. turn:turn.example.vn")
    turn_secret: str = Field(default="", description="coturn static-auth-secret")
    turn_credential_ttl_s: int = Field(default=6 * 3600, ge=60)
    join_token_ttl_s: int = Field(default=300, ge=10)
    room_open_before_s: int = Field(default=15 * 60, ge=0)
    room_grace_after_s: int = Field(default=30 * 60, ge=0)
    media_capacity: int = Field(default=4, ge=0, description="server media legs per process")
    precall_video_min_kbps: float = Field(default=150, ge=0, description="below: audio only")
    precall_video_max_loss_pct: float = Field(default=10, ge=0, description="above: audio only")
    relay_lease_s: float = Field(default=15, ge=1, description="a dead relay host's rooms move")
    relay_forward_timeout_s: float = Field(default=10, gt=0, description="wait for its answer")
    # Timers and notification delivery (docs/timers.md).
    scheduler_enabled: bool = Field(default=True, description="run the claim loops here")
    gc_freeze: bool = Field(
        default=True,
        description="after start-up, exempt the objects alive then from garbage collection",
    )
    timer_poll_s: float = Field(default=0.5, gt=0, le=60)
    timer_batch_size: int = Field(default=100, ge=1, le=1000)
    timer_workers: int = Field(default=2, ge=1, le=16, description="claim loops per process")
    timer_lease_s: float = Field(default=60, gt=0)
    timer_max_attempts: int = Field(default=8, ge=1, le=100)
    timer_retry_base_s: float = Field(default=30, gt=0)
    timer_retry_max_s: float = Field(default=6 * 3600, gt=0)
    timer_late_s: float = Field(default=60, ge=0, description="fired later than this is late")
    timer_test_handlers: bool = Field(default=False, description="register test-only kinds")
    smtp_host: str = Field(default="", description="empty: e-mail is not sent")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "telehealth@localhost"
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10, gt=0)
    webhook_timeout_s: float = Field(default=10, gt=0)
    webhook_allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts webhooks may reach though not public (JSON list of names as in URLs)",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'telehealth.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def escalation_deadlines_s(self) -> dict[str, int]:
        """Seconds an unanswered request waits, by priority, before it escalates."""
        return {
            "emergency": self.escalate_emergency_s,
            "urgent": self.escalate_urgent_s,
            "routine": self.escalate_routine_s,
        }

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def signing_key(self) -> str:
        """The configured key, or one generated once and kept in ``data_dir``."""
        if self.secret_key:
            return self.secret_key
        key_file = private_data_dir(self.data_dir) / "secret.key"
        try:
            # O_EXCL: of processes starting together, one writes the key and all read it.
            descriptor = create_private_file(key_file)
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
