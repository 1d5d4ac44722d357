"""`refuge check` on a real deployment-like setup (a migrated database of the run's kind, Redis, an SMTP server):
a sound configuration passes with exit 0; each problem is named in plain words, with what to do, and exits 1."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from sqlalchemy import text

from exchange.cli import main
from exchange.db import make_engine, make_sessionmaker
from exchange.demo.environment import DEMO_LEDGER_SIGNING_KEY, DEMO_SECRET_KEY
from exchange.migrations import alembic_config, upgrade
from exchange.ops.check import run_checks
from exchange.settings import Settings
from ledger.checkpoints import generate_keys
from ledger.funds import create_fund
from tests.conftest import BASE_DB, REDIS_URL, _create_pg_database, _drop_pg_database

KEYS = generate_keys()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(name="migrated_url", scope="module")
def fixture_migrated_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the run's kind built by the migrations (as `refuge db upgrade` builds it), with one fund."""
    if BASE_DB.startswith("postgresql"):
        url = _create_pg_database(BASE_DB)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('check') / 'refuge.db'}"
    upgrade(url)

    async def add_fund() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as session:
            await create_fund(session, name="Check fund")
        await engine.dispose()

    asyncio.run(add_fund())
    yield url
    if url.startswith("postgresql"):
        _drop_pg_database(url)


@pytest.fixture(name="smtp_port", scope="module")
def fixture_smtp_port() -> Iterator[int]:
    port = _free_port()
    server = Controller(Sink(), hostname="127.0.0.1", port=port)
    server.start()
    yield port
    server.stop()


@pytest.fixture(name="sound")
def fixture_sound(migrated_url: str, smtp_port: int) -> dict[str, str | None]:
    """Every setting `refuge check` reads, each set as a careful deployment sets it."""
    return {
        "DATABASE_URL": migrated_url,
        "SECRET_KEY": secrets.token_hex(32),
        "BASE_URL": "https://refuge.example.org",
        "DEBUG": None,
        "REDIS_URL": REDIS_URL,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "STRIPE_SECRET_KEY": "sk_test_check",
        "STRIPE_WEBHOOK_SECRET": "whsec_check",
        "LEDGER_SIGNING_KEY": KEYS[0],
        "LEDGER_PUBLIC_KEY": KEYS[1],
    }


async def check(env: dict[str, str | None]) -> Result:
    # In a thread: the command runs its own event loop. None unsets a variable for the run.
    return await asyncio.to_thread(CliRunner().invoke, main, ["check"], env=env)


def problems(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("FIX")]


async def test_a_sound_configuration_passes(sound: dict[str, str | None]) -> None:
    result = await check(sound)
    assert problems(result) == [], result.output
    assert result.exit_code == 0
    for topic in ("SECRET_KEY", "BASE_URL", "database", "migrations", "LEDGER_SIGNING_KEY", "Stripe", "REDIS_URL"):
        assert f"ok   {topic}" in result.output
    assert "ok   SMTP_HOST: the mail server at 127.0.0.1" in result.output
    assert "Everything checked is sound." in result.output


CASES: list[tuple[str, dict[str, str | None], str, str]] = [
    ("no secret key", {"SECRET_KEY": None}, "SECRET_KEY", "not set"),
    ("the demo's secret key", {"SECRET_KEY": DEMO_SECRET_KEY}, "SECRET_KEY", "example value"),
    ("a short secret key", {"SECRET_KEY": "hunter2hunter2"}, "SECRET_KEY", "only 14 characters"),
    ("a plain http address", {"BASE_URL": "http://refuge.example.org"}, "BASE_URL", "is not https"),
    ("no public address", {"BASE_URL": None}, "BASE_URL", "not set"),
    ("debug pages", {"DEBUG": "1"}, "DEBUG", "is on"),
    ("a Stripe key alone", {"STRIPE_WEBHOOK_SECRET": None}, "Stripe", "STRIPE_WEBHOOK_SECRET is not"),
    ("a webhook secret alone", {"STRIPE_SECRET_KEY": None}, "Stripe", "STRIPE_SECRET_KEY is not"),
    ("SMTP unreachable", {"SMTP_PORT": "1"}, "SMTP_HOST", "cannot talk to the mail server at 127.0.0.1:1"),
    ("Redis unreachable", {"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL", "cannot reach Redis"),
    ("a fund without a signing key", {"LEDGER_SIGNING_KEY": None}, "LEDGER_SIGNING_KEY", "1 fund(s) exist"),
    ("the demo's signing key", {"LEDGER_SIGNING_KEY": DEMO_LEDGER_SIGNING_KEY}, "LEDGER_SIGNING_KEY", "demo's key"),
    ("a key that is no key", {"LEDGER_SIGNING_KEY": "not-hex"}, "LEDGER_SIGNING_KEY", "not the hex of 32 bytes"),
    ("keys of two pairs", {"LEDGER_PUBLIC_KEY": generate_keys()[1]}, "LEDGER_PUBLIC_KEY", "does not match"),
    (
        "a database nobody answers",
        {"DATABASE_URL": "postgresql+asyncpg://refuge:s3cret-and-long@127.0.0.1:1/refuge"},
        "database",
        "cannot reach PostgreSQL at 127.0.0.1:1/refuge",
    ),
    (
        "the example database password",
        {"DATABASE_URL": "postgresql+asyncpg://refuge:change-me@127.0.0.1:1/refuge"},
        "database password",
        "POSTGRES_PASSWORD",
    ),
]


@pytest.mark.parametrize(("case", "change", "topic", "words"), CASES, ids=[c[0] for c in CASES])
async def test_each_problem_is_named_with_what_to_do(
    sound: dict[str, str | None], case: str, change: dict[str, str | None], topic: str, words: str
) -> None:
    result = await check({**sound, **change})
    assert result.exit_code == 1, result.output
    named = [line for line in problems(result) if line.startswith(f"FIX  {topic}: ")]
    assert named, result.output
    assert words in named[0], named[0]
    assert "thing(s) to fix" in result.output


def _head(url: str) -> str:
    (head,) = ScriptDirectory.from_config(alembic_config(url)).get_heads()
    return head


async def _set_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    await engine.dispose()


async def test_migrations_behind_or_from_an_unknown_version_are_named(
    sound: dict[str, str | None], migrated_url: str
) -> None:
    head = _head(migrated_url)
    previous = ScriptDirectory.from_config(alembic_config(migrated_url)).get_revision(head).down_revision
    assert isinstance(previous, str)
    try:
        await _set_revision(migrated_url, previous)
        behind = await check(sound)
        await _set_revision(migrated_url, "ffffffffffff")
        unknown = await check(sound)
    finally:
        await _set_revision(migrated_url, head)
    assert behind.exit_code == 1
    assert f"FIX  migrations: the database is at {previous}, the code needs {head}. Run: refuge db upgrade" in (
        behind.output
    )
    assert unknown.exit_code == 1
    assert "which this version of the code does not know" in unknown.output


async def test_an_empty_database_is_told_to_run_the_migrations(sound: dict[str, str | None], tmp_path: Path) -> None:
    result = await check({**sound, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"})
    assert result.exit_code == 1
    assert "FIX  migrations: the database has no tables yet. Run: refuge db upgrade." in result.output


async def test_a_clock_far_from_the_databases_is_named(sound: dict[str, str | None], migrated_url: str) -> None:
    """PostgreSQL keeps its own clock; a SQLite file shares the machine's, so there is nothing to compare."""
    settings = Settings(
        database_url=migrated_url, secret_key=secrets.token_hex(32), base_url="https://refuge.example.org"
    )
    ahead = await run_checks(settings, {}, now=lambda: datetime.now(UTC) + timedelta(minutes=5))
    clock = [f for f in ahead if f.topic == "clock"]
    if migrated_url.startswith("postgresql"):
        assert len(clock) == 1 and not clock[0].ok
        assert any(f"disagree by {s} s" in clock[0].message for s in range(290, 311)), clock[0].message
        assert "NTP" in clock[0].message
        in_time = await run_checks(settings, {}, now=lambda: datetime.now(UTC))
        assert [f.ok for f in in_time if f.topic == "clock"] == [True]
    else:
        assert clock == []
