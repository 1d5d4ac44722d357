"""Settings read once from the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = f"sqlite+aiosqlite:///{ROOT / 'refuge.db'}"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_SQLITE
    redis_url: str | None = None
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    base_url: str = "http://127.0.0.1:8000"
    debug: bool = False
    # A hold request that a shelter has not answered within this window is flagged.
    response_window_minutes: int = 30
    stale_after_hours: int = 12
    sweep_interval_seconds: float = 5.0
    login_attempts_per_minute: int = 10
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "refuge-exchange@localhost"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    max_request_bytes: int = 1_000_000
    # Move what is loaded at startup out of the cyclic GC's reach (see app.py); on for served processes.
    gc_freeze: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_SQLITE,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or secrets.token_hex(32),
            base_url=(env.get("BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
            debug=_bool(env.get("DEBUG")),
            response_window_minutes=int(env.get("RESPONSE_WINDOW_MINUTES") or 30),
            stale_after_hours=int(env.get("STALE_AFTER_HOURS") or 12),
            sweep_interval_seconds=float(env.get("SWEEP_INTERVAL_SECONDS") or 5.0),
            login_attempts_per_minute=int(env.get("LOGIN_ATTEMPTS_PER_MINUTE") or 10),
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=int(env.get("SMTP_PORT") or 25),
            smtp_from=env.get("SMTP_FROM") or "refuge-exchange@localhost",
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            gc_freeze=_bool(env.get("GC_FREEZE"), default=True),
        )

    @property
    def stale_after(self) -> timedelta:
        return timedelta(hours=self.stale_after_hours)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def behind_tls(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def stripe_enabled(self) -> bool:
        return bool(self.stripe_secret_key)
