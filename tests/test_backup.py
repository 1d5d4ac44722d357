"""`refuge backup` and `refuge restore` round-trip the run's database (SQLite, or PostgreSQL through pg_dump and
pg_restore) with beds and a fund written through the domain: every table comes back with the same rows, the
ledger's chains and signed checkpoints verify, and a restore refuses a database that is not empty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from beds.pools import adjust
from exchange.cli import main
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from ledger.checkpoints import generate_keys, write_checkpoints
from ledger.deposits import deposit
from ledger.funds import create_fund
from tests.conftest import BASE_DB, Network, _create_pg_database, _drop_pg_database


async def run_cli(database_url: str, *args: str, **env: str) -> Result:
    """The command in a thread (it runs its own event loop), on `database_url`."""
    environment = {"DATABASE_URL": database_url, "LEDGER_PUBLIC_KEY": "", **env}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=environment)


@pytest.fixture(name="keys")
def fixture_keys() -> tuple[str, str]:
    return generate_keys()


@pytest.fixture(name="filled")
async def fixture_filled(network: Network, sessionmaker, keys: tuple[str, str]) -> str:
    """A shelter's Arrival (a pool change), a fund with two deposits, and a signed checkpoint of its chains."""
    async with sessionmaker() as session:
        await adjust(
            session,
            network.pools["a"].id,
            occupied_delta=1,
            out_of_service_delta=0,
            actor_user_id=network["shelter_a"].id,
        )
        await session.commit()
        fund_id = (await create_fund(session, name="Backup test fund")).id
        for cents in (50_000, 12_345):
            await deposit(session, fund_id, amount_cents=cents, source="grant", actor_user_id=network["approver"].id)
        assert await write_checkpoints(session, keys[0])
        await session.commit()
    return fund_id


@pytest.fixture(name="empty_database")
def fixture_empty_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A new database of the run's kind, with nothing in it (PostgreSQL: test_<random>, dropped afterwards)."""
    if database_url.startswith("postgresql"):
        url = _create_pg_database(BASE_DB)
        yield url
        _drop_pg_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"


async def row_counts(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return {
                table.name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
                for table in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


@pytest.fixture(name="backup_file")
async def fixture_backup_file(database_url: str, filled: str, tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "refuge.backup"
    made = await run_cli(database_url, "backup", str(path))
    assert made.exit_code == 0, made.output
    assert path.stat().st_size > 0
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    yield path


async def test_a_backup_restores_into_an_empty_database_with_every_row_and_a_verified_ledger(
    database_url: str, empty_database: str, backup_file: Path, filled: str, keys: tuple[str, str]
) -> None:
    restored = await run_cli(empty_database, "restore", str(backup_file), LEDGER_PUBLIC_KEY=keys[1])
    assert restored.exit_code == 0, restored.output
    assert f"{filled} journal: ok, " in restored.output and f"{filled} audit: ok, " in restored.output
    assert f"{filled} checkpoints: ok" in restored.output
    assert "Restored and verified" in restored.output

    before, after = await row_counts(database_url), await row_counts(empty_database)
    assert after == before
    assert after["ledger_fund"] == 1 and after["pool_change"] >= 1 and after["ledger_journal_entry"] >= 2

    verified = await run_cli(empty_database, "ledger", "verify", LEDGER_PUBLIC_KEY=keys[1])
    assert verified.exit_code == 0, verified.output


async def test_restore_refuses_a_database_that_is_not_empty_unless_forced(
    database_url: str, empty_database: str, backup_file: Path, filled: str
) -> None:
    assert (await run_cli(empty_database, "restore", str(backup_file))).exit_code == 0
    again = await run_cli(empty_database, "restore", str(backup_file))
    assert again.exit_code == 1
    assert "not empty" in again.output and "--force" in again.output
    assert await row_counts(empty_database) == await row_counts(database_url)  # nothing doubled

    forced = await run_cli(empty_database, "restore", "--force", str(backup_file))
    assert forced.exit_code == 0, forced.output
    assert await row_counts(empty_database) == await row_counts(database_url)


async def test_backup_never_overwrites_and_restore_names_a_file_it_cannot_use(
    database_url: str, empty_database: str, backup_file: Path, tmp_path: Path
) -> None:
    kept = await asyncio.to_thread(backup_file.read_bytes)
    twice = await run_cli(database_url, "backup", str(backup_file))
    assert twice.exit_code == 1 and "already exists" in twice.output
    assert await asyncio.to_thread(backup_file.read_bytes) == kept

    not_a_backup = tmp_path / "notes.txt"
    await asyncio.to_thread(not_a_backup.write_text, "shopping list", encoding="utf-8")
    wrong = await run_cli(empty_database, "restore", str(not_a_backup))
    assert wrong.exit_code == 1 and "is not a backup made by `refuge backup`" in wrong.output
    missing = await run_cli(empty_database, "restore", str(tmp_path / "nowhere.backup"))
    assert missing.exit_code == 1 and "no backup file" in missing.output
