"""Ledger benchmark: post N journal entries through the domain functions, verify the chain, time balance reads.

    .venv/bin/python -m bench.ledger [DATABASE_URL] [--entries 100000]

DATABASE_URL defaults to $BENCH_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test; on
PostgreSQL a fresh `bench_<random>` database is created beside it and dropped, on SQLite a temporary file is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.common import ScratchDatabase
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from ledger.deposits import deposit
from ledger.funds import create_fund, fund_summary
from ledger.verify import verify_journal

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _balance_read_ms(sessionmaker: async_sessionmaker, fund_id: str, reads: int = 200) -> float:
    async with sessionmaker() as session:
        await fund_summary(session, fund_id)  # warm
        start = time.perf_counter()
        for _ in range(reads):
            await fund_summary(session, fund_id)
        return (time.perf_counter() - start) * 1000 / reads


async def run(url: str, entries: int, async_commit: bool) -> None:
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
    read_1k = None
    start = time.perf_counter()
    for i in range(1, entries + 1):
        # A session per entry, as a web request has.
        async with sessionmaker() as session:
            await deposit(session, fund_id, amount_cents=100 + i % 997, source="donation", actor_user_id="bench")
        if i == 1000:
            pause = time.perf_counter()
            read_1k = await _balance_read_ms(sessionmaker, fund_id)
            start += time.perf_counter() - pause
        if i % 10_000 == 0:
            print(f"  {i} entries, {i / (time.perf_counter() - start):.0f}/s", flush=True)
    elapsed = time.perf_counter() - start
    read_all = await _balance_read_ms(sessionmaker, fund_id)
    verify_start = time.perf_counter()
    async with sessionmaker() as session:
        check = await verify_journal(session, fund_id)
    verify_s = time.perf_counter() - verify_start
    await engine.dispose()
    print(f"database: {engine.dialect.name}{' (synchronous_commit=off)' if kwargs else ''}")
    print(f"posted {entries} entries in {elapsed:.1f} s: {entries / elapsed:.0f} entries/s (one transaction each)")
    print(f"verified the chain ({check.count} entries, ok={check.ok}) in {verify_s:.2f} s")
    at_1k = f"{read_1k:.3f} ms at 1k entries, " if read_1k is not None else ""
    print(f"fund balance read: {at_1k}{read_all:.3f} ms at {entries} entries")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--async-commit", action="store_true", help="PostgreSQL synchronous_commit=off")
    args = parser.parse_args()
    if args.url.startswith("postgresql"):
        database = ScratchDatabase.beside(args.url.replace("postgresql+asyncpg://", "postgresql://", 1))
        database.create()
        try:
            asyncio.run(run(database.sqlalchemy_url, args.entries, args.async_commit))
        finally:
            database.drop()
    else:
        url = args.url
        if url in ("sqlite", "sqlite+aiosqlite://"):
            url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.db"
        asyncio.run(run(url, args.entries, args.async_commit))


if __name__ == "__main__":
    main()
