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
    # "json" (the default, one JSON object per line for a log collector) or "console": short human lines,
    # warnings and errors only, no line per request (what `refuge demo` uses, so its logins stay on screen).
    log_format: str = "json"
    # A hold request that a shelter has not answered within this window is flagged.
    response_window_minutes: int = 30
    # Holds (issue 9): beds one requester / one organisation may have requested and unanswered at once; an
    # unanswered request lapses this long after its response window; a claimed hold grants the address
    # this many hours after the claim (until placements exist).
    hold_limit_per_requester: int = 20
    hold_limit_per_organisation: int = 60
    hold_lapse_grace_minutes: int = 30
    # The most beds one police operation may ask for, all its needs together.
    operation_need_max_beds: int = 200
    claim_grant_hours: int = 24
    # Placements (issue 12): follow-up dates this many days after a stay ends, for the case's worker; the case link
    # of ended placements and closed holds is removed this many days after they end (counts stay).
    placement_follow_up_days: tuple[int, ...] = (7, 30)
    personal_link_retention_days: int = 180
    stale_after_hours: int = 12
    sweep_interval_seconds: float = 5.0
    # Failed logins one address may make per minute (successes do not count); failures of one account from one
    # address before that pair waits, and the longest wait (it doubles with each attempt); bearer tokens' life;
    # argon2 checks running at once per process (in worker threads).
    login_attempts_per_minute: int = 10
    login_failures_free: int = 5
    login_delay_cap_seconds: int = 900
    token_lifetime_days: int = 90
    password_checks_at_once: int = 2
    # Donation checkouts started per address and minute: the public donate form asks Stripe each time.
    donations_per_minute: int = 10
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "refuge-exchange@localhost"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    max_request_bytes: int = 1_000_000
    # Move what is loaded at startup out of the cyclic GC's reach (see app.py); on for served processes.
    gc_freeze: bool = False
    # The largest amount (cents) any money field takes, API or form: 1,000,000.00.
    max_amount_cents: int = 100_000_000
    # New cases one case worker may open per rolling 24 hours (new cases do not reset the per-case caps).
    cases_per_user_per_day: int = 10
    # The fund rules' hard ceilings (cents): no rule set goes above them, however approved.
    rules_fast_path_ceiling_cents: int = 50_000
    rules_single_approval_ceiling_cents: int = 300_000
    # Checkpoints of the ledger chains: Ed25519 keys as hex of the 32 raw bytes. The private key is only ever
    # in the environment; without it the app runs and writes no checkpoint. Checkpoints are also appended
    # (one JSON line each) to `ledger_checkpoint_file` when it is set, an anchor outside the database.
    ledger_signing_key: str | None = field(default=None, repr=False)
    ledger_public_key: str | None = None
    ledger_checkpoint_minutes: int = 60
    ledger_checkpoint_file: str | None = None
    # Web Push (exchange/oncall/push.py): the VAPID key pair (base64url; the private key only in the environment)
    # and the contact the push services may write to. Without the keys nothing is pushed; e-mail still goes.
    vapid_public_key: str | None = None
    vapid_private_key: str | None = field(default=None, repr=False)
    vapid_subject: str = "mailto:refuge-exchange@localhost"
    # The push services a subscription's endpoint may point at (scheme://host, "*." for any subdomain): the server
    # posts to that endpoint, so a browser may not name an address of the server's own network instead.
    push_services: tuple[str, ...] = (
        "https://fcm.googleapis.com",
        "https://android.googleapis.com",
        "https://*.push.services.mozilla.com",
        "https://*.push.apple.com",
        "https://*.notify.windows.com",
    )
    # The escalation ladder (exchange/oncall/sweep.py): a fund request waiting this long goes to every approver,
    # past tonight's roster; the approvers' roster nights are dates in this zone (a night runs noon to noon).
    escalation_all_approvers_minutes: int = 30
    # An unanswered hold request goes to the facility's next on-call contact at its response window, to each
    # further one this many minutes later, then to the coordinators.
    escalation_contact_minutes: int = 10
    roster_time_zone: str = "America/Toronto"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_SQLITE,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or secrets.token_hex(32),
            base_url=(env.get("BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
            debug=_bool(env.get("DEBUG")),
            log_format=(env.get("LOG_FORMAT") or "json").strip().lower(),
            response_window_minutes=int(env.get("RESPONSE_WINDOW_MINUTES") or 30),
            hold_limit_per_requester=int(env.get("HOLD_LIMIT_PER_REQUESTER") or 20),
            hold_limit_per_organisation=int(env.get("HOLD_LIMIT_PER_ORGANISATION") or 60),
            operation_need_max_beds=int(env.get("OPERATION_NEED_MAX_BEDS") or 200),
            hold_lapse_grace_minutes=int(env.get("HOLD_LAPSE_GRACE_MINUTES") or 30),
            claim_grant_hours=int(env.get("CLAIM_GRANT_HOURS") or 24),
            placement_follow_up_days=tuple(
                int(d) for d in (env.get("PLACEMENT_FOLLOW_UP_DAYS") or "7,30").split(",") if d.strip()
            ),
            personal_link_retention_days=int(env.get("PERSONAL_LINK_RETENTION_DAYS") or 180),
            stale_after_hours=int(env.get("STALE_AFTER_HOURS") or 12),
            sweep_interval_seconds=float(env.get("SWEEP_INTERVAL_SECONDS") or 5.0),
            login_attempts_per_minute=int(env.get("LOGIN_ATTEMPTS_PER_MINUTE") or 10),
            login_failures_free=int(env.get("LOGIN_FAILURES_FREE") or 5),
            login_delay_cap_seconds=int(env.get("LOGIN_DELAY_CAP_SECONDS") or 900),
            token_lifetime_days=int(env.get("TOKEN_LIFETIME_DAYS") or 90),
            password_checks_at_once=int(env.get("PASSWORD_CHECKS_AT_ONCE") or 2),
            donations_per_minute=int(env.get("DONATIONS_PER_MINUTE") or 10),
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=int(env.get("SMTP_PORT") or 25),
            smtp_from=env.get("SMTP_FROM") or "refuge-exchange@localhost",
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            gc_freeze=_bool(env.get("GC_FREEZE"), default=True),
            max_amount_cents=int(env.get("MAX_AMOUNT_CENTS") or 100_000_000),
            cases_per_user_per_day=int(env.get("CASES_PER_USER_PER_DAY") or 10),
            rules_fast_path_ceiling_cents=int(env.get("RULES_FAST_PATH_CEILING_CENTS") or 50_000),
            rules_single_approval_ceiling_cents=int(env.get("RULES_SINGLE_APPROVAL_CEILING_CENTS") or 300_000),
            ledger_signing_key=env.get("LEDGER_SIGNING_KEY") or None,
            ledger_public_key=env.get("LEDGER_PUBLIC_KEY") or None,
            ledger_checkpoint_minutes=int(env.get("LEDGER_CHECKPOINT_MINUTES") or 60),
            ledger_checkpoint_file=env.get("LEDGER_CHECKPOINT_FILE") or None,
            vapid_public_key=env.get("VAPID_PUBLIC_KEY") or None,
            vapid_private_key=env.get("VAPID_PRIVATE_KEY") or None,
            vapid_subject=env.get("VAPID_SUBJECT") or "mailto:refuge-exchange@localhost",
            push_services=tuple(p.strip() for p in env["PUSH_SERVICES"].split(",") if p.strip())
            if env.get("PUSH_SERVICES")
            else cls.push_services,
            escalation_all_approvers_minutes=int(env.get("ESCALATION_ALL_APPROVERS_MINUTES") or 30),
            escalation_contact_minutes=int(env.get("ESCALATION_CONTACT_MINUTES") or 10),
            roster_time_zone=env.get("ROSTER_TIME_ZONE") or "America/Toronto",
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
