"""`refuge check`: is this deployment's configuration sound? Each finding says, in plain words, what is wrong and
what to do; the command exits non-zero on any problem, so docker-compose starts no app on a broken setup.

It reads the settings (and the environment, to tell a value that was set from a default the process made up),
then talks to what they point at: the database (reachable, migrations at head, its clock), Redis, SMTP.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from exchange.demo.environment import DEMO_LEDGER_SIGNING_KEY, DEMO_SECRET_KEY
from exchange.oncall.push import vapid_pair_matches
from exchange.settings import Settings
from ledger.models import Fund

MIN_SECRET_LENGTH = 32
# Example values of this repository and its docs: public, so never a secret.
KNOWN_SECRETS = frozenset({DEMO_SECRET_KEY, "change-me", "changeme", "secret", "for-validation-only"})
KNOWN_DB_PASSWORDS = frozenset({"change-me", "changeme", "postgres", "password", "refuge"})
MAX_CLOCK_SKEW = timedelta(seconds=30)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Finding:
    """One thing checked: `ok`, or a problem with what to do about it."""

    topic: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'FIX'}  {self.topic}: {self.message}"


def _ok(topic: str, message: str) -> Finding:
    return Finding(topic, True, message)


def _fix(topic: str, message: str) -> Finding:
    return Finding(topic, False, message)


def is_local(base_url: str) -> bool:
    host = base_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    return host in LOCAL_HOSTS


def check_secret_key(settings: Settings, environ: Mapping[str, str]) -> Finding:
    if not environ.get("SECRET_KEY"):
        return _fix(
            "SECRET_KEY",
            "not set: each process makes up its own, so logins and forms break on every restart and between "
            "replicas. Set it to a long random value: python3 -c 'import secrets; print(secrets.token_hex(32))'.",
        )
    if settings.secret_key in KNOWN_SECRETS:
        return _fix("SECRET_KEY", "is an example value everyone can read. Set a long random value of your own.")
    if len(settings.secret_key) < MIN_SECRET_LENGTH:
        return _fix(
            "SECRET_KEY",
            f"is only {len(settings.secret_key)} characters; use at least {MIN_SECRET_LENGTH} random ones.",
        )
    return _ok("SECRET_KEY", "set, long enough")


def check_base_url(settings: Settings, environ: Mapping[str, str]) -> Finding:
    if not environ.get("BASE_URL"):
        return _fix(
            "BASE_URL",
            "not set: links in e-mails and the live board's origin check use http://127.0.0.1:8000. Set the "
            "public address people open, e.g. https://refuge.example.org.",
        )
    if settings.base_url.startswith("https://"):
        return _ok("BASE_URL", f"{settings.base_url} (cookies are sent over HTTPS only)")
    if is_local(settings.base_url):
        return _ok("BASE_URL", f"{settings.base_url} (this machine only, fine for a trial)")
    return _fix(
        "BASE_URL",
        f"{settings.base_url} is not https: passwords and session cookies would cross the network in clear. "
        "Put the app behind a TLS reverse proxy (see README) and set BASE_URL to its https:// address.",
    )


def check_debug(settings: Settings) -> Finding:
    if settings.debug:
        return _fix("DEBUG", "is on: error pages show internals to anyone. Remove DEBUG from the environment.")
    return _ok("DEBUG", "off")


def check_stripe(settings: Settings) -> Finding:
    if settings.stripe_secret_key and not settings.stripe_webhook_secret:
        return _fix(
            "Stripe",
            "STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not: card payments and donations would never "
            "be confirmed. Add the endpoint https://<your site>/webhooks/stripe in Stripe and set its signing "
            "secret (whsec_...).",
        )
    if settings.stripe_webhook_secret and not settings.stripe_secret_key:
        return _fix(
            "Stripe",
            "STRIPE_WEBHOOK_SECRET is set but STRIPE_SECRET_KEY is not: cards cannot be issued. Set both, or "
            "neither (payments are then recorded by hand).",
        )
    if settings.stripe_secret_key:
        return _ok("Stripe", "secret key and webhook secret set")
    return _ok("Stripe", "not used (payments are recorded by hand)")


def check_push(settings: Settings) -> Finding:
    if not settings.vapid_public_key and not settings.vapid_private_key:
        return _ok(
            "Web Push",
            "not used (VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY unset): waiting requests are told by e-mail only",
        )
    if not (settings.vapid_public_key and settings.vapid_private_key) or not vapid_pair_matches(settings):
        return _fix(
            "Web Push",
            "VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY must be one key pair (base64url, P-256): set both, or neither.",
        )
    return _ok("Web Push", f"VAPID keys set, contact {settings.vapid_subject}")


def check_ledger_keys(settings: Settings, funds: int | None) -> Finding:
    from ledger.checkpoints import public_key_of
    from ledger.errors import LedgerError

    signing, public = settings.ledger_signing_key, settings.ledger_public_key
    if signing:
        if signing.strip() == DEMO_LEDGER_SIGNING_KEY:
            return _fix("LEDGER_SIGNING_KEY", "is the demo's key, which is public. Make one: refuge ledger keygen.")
        try:
            derived = public_key_of(signing)
        except LedgerError:
            return _fix("LEDGER_SIGNING_KEY", "is not the hex of 32 bytes. Make a key pair: refuge ledger keygen.")
        if public and public.strip().lower() != derived:
            return _fix(
                "LEDGER_PUBLIC_KEY",
                "does not match LEDGER_SIGNING_KEY: checkpoints would not verify. Set both from one "
                "`refuge ledger keygen`.",
            )
        return _ok("LEDGER_SIGNING_KEY", "set; the ledger's chains are signed")
    if funds:
        return _fix(
            "LEDGER_SIGNING_KEY",
            f"not set while {funds} fund(s) exist: nobody can prove later that the journal was not rewritten. "
            "Run `refuge ledger keygen`, put the first line in the environment and keep the second.",
        )
    return _ok("LEDGER_SIGNING_KEY", "not set (no fund yet; set it before creating one)")


def check_database_password(settings: Settings) -> Finding | None:
    url = make_url(settings.database_url)
    if url.drivername.startswith("sqlite"):
        return None
    if url.password is not None and str(url.password) in KNOWN_DB_PASSWORDS:
        return _fix(
            "database password",
            f"is the example value {str(url.password)!r}. Set POSTGRES_PASSWORD (docker-compose) or change the "
            "password in DATABASE_URL.",
        )
    return None


def _describe(database_url: str) -> str:
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        return f"the SQLite file {url.database}"
    return f"PostgreSQL at {url.host}:{url.port or 5432}/{url.database}"


async def check_database(settings: Settings, now: Callable[[], datetime]) -> tuple[list[Finding], int | None]:
    """Reachable, migrations at head, clock close to ours; and how many funds exist (None when unknown)."""
    from alembic.script import ScriptDirectory

    from exchange.db import make_engine
    from exchange.migrations import alembic_config

    where = _describe(settings.database_url)
    heads = set(ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads())
    findings: list[Finding] = []
    funds: int | None = None
    engine = make_engine(settings.database_url, **({} if settings.is_sqlite else {"pool_size": 1}))
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS * 2), engine.connect() as conn:
            findings.append(_ok("database", f"reachable ({where})"))
            has_version = await conn.run_sync(lambda c: c.dialect.has_table(c, "alembic_version"))
            current = (
                set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
                if has_version
                else set()
            )
            if not current:
                findings.append(_fix("migrations", "the database has no tables yet. Run: refuge db upgrade."))
            elif current == heads:
                findings.append(_ok("migrations", f"at the latest revision ({', '.join(sorted(heads))})"))
            elif current - heads and not _known(current - heads, settings.database_url):
                findings.append(
                    _fix(
                        "migrations",
                        f"the database is at {', '.join(sorted(current))}, which this version of the code does "
                        "not know (made by a newer version?). Run the version that made it, or restore a backup.",
                    )
                )
            else:
                findings.append(
                    _fix(
                        "migrations",
                        f"the database is at {', '.join(sorted(current))}, the code needs "
                        f"{', '.join(sorted(heads))}. Run: refuge db upgrade (after a backup).",
                    )
                )
            if current:
                funds = (await conn.execute(select(func.count()).select_from(Fund))).scalar_one()
            if not settings.is_sqlite:
                theirs = (await conn.execute(text("SELECT now()"))).scalar_one()
                skew = abs(theirs - now())
                if skew > MAX_CLOCK_SKEW:
                    findings.append(
                        _fix(
                            "clock",
                            f"this machine and the database disagree by {int(skew.total_seconds())} s: holds "
                            "would lapse and checkpoints be dated wrong. Turn on time sync (NTP) on both.",
                        )
                    )
                else:
                    findings.append(_ok("clock", "agrees with the database's"))
    except Exception as error:  # any failure to reach it or read it is the finding
        if not findings:
            findings.append(_fix("database", f"cannot reach {where}: {_reason(error)}. Check DATABASE_URL."))
        else:
            findings.append(_fix("database", f"reading {where} failed: {_reason(error)}"))
    finally:
        await engine.dispose()
    return findings, funds


def _known(revisions: set[str], database_url: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from exchange.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config(database_url))
    try:
        return all(script.get_revision(r) is not None for r in revisions)
    except CommandError:
        return False


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS * 2:.0f} s"
    words = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (words[0] if words else type(error).__name__)[:200]


async def check_redis(settings: Settings) -> Finding:
    if not settings.redis_url:
        return _ok("REDIS_URL", "not set (one process only: sessions and the live board stay inside it)")
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS)
    where = settings.redis_url.split("@")[-1]
    try:
        await redis.ping()
    except Exception as error:  # any failure to reach it is the finding
        return _fix("REDIS_URL", f"cannot reach Redis at {where}: {_reason(error)}. Check REDIS_URL.")
    finally:
        await redis.aclose()
    return _ok("REDIS_URL", f"Redis answers at {where}")


def _smtp_greets(host: str, port: int) -> None:
    with smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS) as smtp:
        smtp.noop()


async def check_smtp(settings: Settings) -> Finding:
    if not settings.smtp_host:
        return _ok("SMTP_HOST", "not set (no e-mail to shelters' on-call addresses; the board still shows requests)")
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        await asyncio.to_thread(_smtp_greets, settings.smtp_host, settings.smtp_port)
    except (OSError, smtplib.SMTPException) as error:
        return _fix(
            "SMTP_HOST",
            f"cannot talk to the mail server at {where}: {_reason(error)}. Hold requests would reach no on-call "
            "inbox. Check SMTP_HOST and SMTP_PORT, or unset SMTP_HOST.",
        )
    return _ok("SMTP_HOST", f"the mail server at {where} answers")


def check_database_url(environ: Mapping[str, str]) -> Finding | None:
    if environ.get("DATABASE_URL"):
        return None
    return _fix(
        "DATABASE_URL",
        "not set: the app would use a SQLite file beside the code. Set it (postgresql+asyncpg://... for several "
        "processes), or to a sqlite+aiosqlite:/// file you back up.",
    )


async def run_checks(
    settings: Settings, environ: Mapping[str, str], *, now: Callable[[], datetime] | None = None
) -> list[Finding]:
    """Every finding, problems and passes, in the order a person reads them."""
    findings = [f for f in (check_database_url(environ), check_database_password(settings)) if f]
    findings += [check_secret_key(settings, environ), check_base_url(settings, environ), check_debug(settings)]
    database, funds = await check_database(settings, now or (lambda: datetime.now(UTC)))
    findings += database
    findings += [check_ledger_keys(settings, funds), check_stripe(settings), check_push(settings)]
    findings += await asyncio.gather(check_redis(settings), check_smtp(settings))
    return findings
