"""Ledger benchmark: post N journal entries through the domain functions, verify the chain, time balance reads.

    .venv/bin/python bench/ledger.py [DATABASE_URL] [--entries 100000]

DATABASE_URL defaults to $BENCH_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test; on
PostgreSQL a fresh `bench_<random>` database is created and dropped, on SQLite a temporary file is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url

from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from ledger.journal import create_fund, deposit, fund_summary
from ledger.verify import verify_journal

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _admin_pg(url: str, sql: str) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _balance_read_ms(sessionmaker, fund_id: str, reads: int = 200) -> float:
    async with sessionmaker() as session:
        await fund_summary(session, fund_id)  # warm
        start = time.perf_counter()
        for _ in range(reads):
            await fund_summary(session, fund_id)
        return (time.perf_counter() - start) * 1000 / reads


async def run(url: str, entries: int, async_commit: bool) -> None:
    kwargs = {}
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
    print(f"fund balance read: {read_1k:.3f} ms at 1k entries, {read_all:.3f} ms at {entries} entries")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--async-commit", action="store_true", help="PostgreSQL synchronous_commit=off")
    args = parser.parse_args()
    if args.url.startswith("postgresql"):
        name = "bench_" + secrets.token_hex(4)
        url = make_url(args.url).set(database=name).render_as_string(hide_password=False)
        asyncio.run(_admin_pg(args.url, f'CREATE DATABASE "{name}"'))
        try:
            asyncio.run(run(url, args.entries, args.async_commit))
        finally:
            asyncio.run(_admin_pg(args.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        url = args.url
        if url in ("sqlite", "sqlite+aiosqlite://"):
            url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.db"
        asyncio.run(run(url, args.entries, args.async_commit))


if __name__ == "__main__":
    main()
