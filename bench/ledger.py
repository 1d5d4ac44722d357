"""Ledger benchmark: post N journal entries through the domain functions, one transaction each (as web requests
do) and in batches (`post_entries`, as an import does), count the round trips of one deposit, verify the chain
and time balance reads.

    .venv/bin/python -m bench.ledger [DATABASE_URL] [--entries 100000] [--batch 1000]

DATABASE_URL defaults to $BENCH_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test; on
PostgreSQL a fresh `bench_<random>` database is created beside it and dropped, on SQLite a temporary file is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.common import ScratchDatabase
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from ledger.audit import record_event, record_events
from ledger.chain import GENESIS, entry_hash
from ledger.deposits import deposit
from ledger.funds import create_fund, fund_account_map, fund_summary, lock_fund
from ledger.journal import EntrySpec, LineSpec, entry_views, post_entries
from ledger.models import CASH_ACCOUNT, NORMAL_SIDE, AccountBalance, Fund, JournalEntry, JournalLine
from ledger.timeutil import utcnow
from ledger.verify import verify_journal

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_PER_S = 1000
CHUNK = 500
# Before issue 15, measured by this script on the same machine: 69-92 entries/s over 100k, about 12 round trips.
PREVIOUS = "69-92 entries/s, ~12 round trips a deposit"


async def _round_trips(engine: AsyncEngine, sessionmaker: async_sessionmaker, fund_id: str) -> int:
    """Statements, BEGINs and COMMITs the database sees for one deposit (its answer included)."""
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        seen.append(sql)

    def transaction_end(_conn: Any) -> None:
        seen.append("COMMIT/ROLLBACK")

    def begin(_conn: Any) -> None:
        if engine.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE is a statement, counted above
            seen.append("BEGIN")

    hooks = [("before_cursor_execute", statement), ("commit", transaction_end), ("rollback", transaction_end)]
    hooks.append(("begin", begin))
    for name, hook in hooks:
        event.listen(engine.sync_engine, name, hook)
    try:
        async with sessionmaker() as session:
            await deposit(session, fund_id, amount_cents=100, source="donation", actor_user_id="bench")
    finally:
        for name, hook in hooks:
            event.remove(engine.sync_engine, name, hook)
    return len(seen)


# --- the previous posting, the same-run baseline (ledger/journal.py before issue 15) ------------------------------


async def _previous_post_entry(
    session: AsyncSession, fund: Fund, *, kind: str, lines: list[LineSpec], memo: str
) -> JournalEntry:
    """The entry flushed, its lines flushed, one UPDATE per line, the sums read back, the fund flushed."""
    account_map = await fund_account_map(session, fund.id)
    accounts = {code: account_id for code, (account_id, _) in account_map.items()}
    debits = credits = sum(line.amount_cents for line in lines) // 2
    entry = JournalEntry(
        fund_id=fund.id,
        seq=fund.entry_count + 1,
        kind=kind,
        posted_at=utcnow(),
        memo=memo,
        total_debits_cents=debits,
        total_credits_cents=credits,
        prev_hash=fund.head_hash or GENESIS,
        hash="",
    )
    entry.hash = entry_hash(entry, fund.currency, [(line.account_code, line.side, line.amount_cents) for line in lines])
    session.add(entry)
    await session.flush()
    session.add_all(
        JournalLine(
            entry_id=entry.id,
            position=position,
            account_id=accounts[line.account_code],
            side=line.side,
            amount_cents=line.amount_cents,
        )
        for position, line in enumerate(lines)
    )
    await session.flush()
    for line in lines:
        delta = line.amount_cents if line.side == NORMAL_SIDE[account_map[line.account_code][1]] else -line.amount_cents
        moved = (
            await session.execute(
                update(AccountBalance)
                .where(
                    AccountBalance.account_id == accounts[line.account_code],
                    AccountBalance.balance_cents + delta >= AccountBalance.committed_cents,
                )
                .values(balance_cents=AccountBalance.balance_cents + delta)
                .returning(AccountBalance.account_id)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        assert moved is not None
    sums = dict(
        (
            await session.execute(
                select(JournalLine.side, func.sum(JournalLine.amount_cents))
                .where(JournalLine.entry_id == entry.id)
                .group_by(JournalLine.side)
            )
        ).all()
    )
    assert int(sums["debit"]) == debits and int(sums["credit"]) == credits
    fund.entry_count = entry.seq
    fund.head_hash = entry.hash
    session.add(fund)
    await session.flush()
    return entry


async def _previous_deposit(session: AsyncSession, fund_id: str, amount_cents: int) -> None:
    fund = await lock_fund(session, fund_id)
    lines = [LineSpec(CASH_ACCOUNT, "debit", amount_cents), LineSpec("income:donation", "credit", amount_cents)]
    entry = await _previous_post_entry(session, fund, kind="deposit", lines=lines, memo="donation")
    detail = {"entry": entry.id, "amount_cents": amount_cents, "source": "donation"}
    await record_event(session, fund, "deposit", "bench", detail=detail)
    await session.commit()
    await entry_views(session, [entry])


async def _post_batches(sessionmaker: async_sessionmaker, fund_id: str, entries: int, batch: int) -> float:
    """`entries` deposits, `batch` to a transaction, each with its audit event; the time they took."""
    start = time.perf_counter()
    for first in range(0, entries, batch):
        async with sessionmaker() as session:
            fund = await lock_fund(session, fund_id)
            now = utcnow()
            specs = [
                EntrySpec(
                    "deposit",
                    [
                        LineSpec(CASH_ACCOUNT, "debit", 100 + i % 997),
                        LineSpec("income:donation", "credit", 100 + i % 997),
                    ],
                    memo="donation",
                    posted_at=now,
                )
                for i in range(first, min(first + batch, entries))
            ]
            posted = await post_entries(session, fund, specs)
            await record_events(
                session,
                fund,
                [
                    (
                        "deposit",
                        "bench",
                        None,
                        {"entry": e.id, "amount_cents": e.total_debits_cents, "source": "donation"},
                        now,
                    )
                    for e in posted
                ],
            )
            await session.commit()
    return time.perf_counter() - start


async def _balance_read_ms(sessionmaker: async_sessionmaker, fund_id: str, reads: int = 200) -> float:
    async with sessionmaker() as session:
        await fund_summary(session, fund_id)  # warm
        start = time.perf_counter()
        for _ in range(reads):
            await fund_summary(session, fund_id)
        return (time.perf_counter() - start) * 1000 / reads


async def run(url: str, entries: int, async_commit: bool, batch: int) -> None:
    kwargs: dict[str, object] = {}
    if async_commit and url.startswith("postgresql"):
        # Without this every commit waits for an fsync of the WAL, and the disk, not the code, is measured.
        kwargs["connect_args"] = {"server_settings": {"synchronous_commit": "off"}}
    engine = make_engine(url, **kwargs)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Bench Fund", currency="CAD")
    fund_id = fund.id
    async with sessionmaker() as session:
        previous_fund_id = (await create_fund(session, name="Bench Previous Fund", currency="CAD")).id
    read_1k = None
    elapsed = previous_s = 0.0
    # The new path and the previous one take turns, CHUNK entries each, so both meet the same machine.
    for first in range(1, entries + 1, CHUNK):
        chunk = range(first, min(first + CHUNK, entries + 1))
        start = time.perf_counter()
        for i in chunk:
            # A session per entry, as a web request has.
            async with sessionmaker() as session:
                await deposit(session, fund_id, amount_cents=100 + i % 997, source="donation", actor_user_id="bench")
        elapsed += time.perf_counter() - start
        start = time.perf_counter()
        for i in chunk:
            async with sessionmaker() as session:
                await _previous_deposit(session, previous_fund_id, 100 + i % 997)
        previous_s += time.perf_counter() - start
        if read_1k is None and chunk[-1] >= 1000:
            read_1k = await _balance_read_ms(sessionmaker, fund_id)
        if chunk[-1] % 10_000 == 0:
            print(
                f"  {chunk[-1]} entries, {chunk[-1] / elapsed:.0f}/s (previous {chunk[-1] / previous_s:.0f}/s)",
                flush=True,
            )
    read_all = await _balance_read_ms(sessionmaker, fund_id)
    trips = await _round_trips(engine, sessionmaker, fund_id)
    verify_start = time.perf_counter()
    async with sessionmaker() as session:
        check = await verify_journal(session, fund_id)
    verify_s = time.perf_counter() - verify_start
    async with sessionmaker() as session:
        batch_fund = await create_fund(session, name="Bench Batch Fund", currency="CAD")
    batch_s = await _post_batches(sessionmaker, batch_fund.id, entries, batch)
    async with sessionmaker() as session:
        batch_check = await verify_journal(session, batch_fund.id)
    await engine.dispose()
    print(f"database: {engine.dialect.name}{' (synchronous_commit=off)' if kwargs else ''}")
    print(f"posted {entries} entries in {elapsed:.1f} s: {entries / elapsed:.0f} entries/s (one transaction each)")
    print(f"  previous posting (baseline, same run, turn about): {entries / previous_s:.0f} entries/s")
    print(f"  one deposit: {trips} round trips (statements, BEGIN and COMMIT); before issue 15: {PREVIOUS}")
    print(
        f"posted {entries} entries in batches of {batch} in {batch_s:.1f} s: {entries / batch_s:.0f} entries/s "
        f"(target >= {TARGET_PER_S}/s; chain ok={batch_check.ok})"
    )
    print(f"verified the chain ({check.count} entries, ok={check.ok}) in {verify_s:.2f} s")
    at_1k = f"{read_1k:.3f} ms at 1k entries, " if read_1k is not None else ""
    print(f"fund balance read: {at_1k}{read_all:.3f} ms at {entries} entries")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries a transaction in the batch run")
    parser.add_argument("--async-commit", action="store_true", help="PostgreSQL synchronous_commit=off")
    args = parser.parse_args()
    if args.url.startswith("postgresql"):
        database = ScratchDatabase.beside(args.url.replace("postgresql+asyncpg://", "postgresql://", 1))
        database.create()
        try:
            asyncio.run(run(database.sqlalchemy_url, args.entries, args.async_commit, args.batch))
        finally:
            database.drop()
    else:
        url = args.url
        if url in ("sqlite", "sqlite+aiosqlite://"):
            url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.db"
        asyncio.run(run(url, args.entries, args.async_commit, args.batch))


if __name__ == "__main__":
    main()
