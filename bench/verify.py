"""Chain verification benchmark: a fund of N journal entries (each with its lines and its audit event),
verified by `ledger.verify` beside the previous verifier (ORM objects, json.dumps per entry), kept here as the
same-run baseline.

    .venv/bin/python -m bench.verify [DATABASE_URL] [--entries 100000]

The entries are written straight into the tables with the chain's own hash functions (posting 100,000
entries one transaction at a time is bench.ledger's job, not this one's). DATABASE_URL defaults to
$BENCH_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test; on PostgreSQL a fresh
`bench_<random>` database is created beside it and dropped, on SQLite a temporary file is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bench.common import ScratchDatabase
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from ledger.chain import GENESIS, canonical_time, digest, entry_document, entry_hash, event_document
from ledger.funds import create_fund, fund_account_map, get_fund
from ledger.models import CASH_ACCOUNT, Account, AccountBalance, AuditEvent, Fund, JournalEntry, JournalLine
from ledger.timeutil import utcnow
from ledger.verify import ChainCheck, verify_fund, verify_journal

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_S = 1.0
WRITE_BATCH = 5000


async def build_fund(sessionmaker: Any, entries: int) -> str:
    """A fund whose journal holds `entries` deposits, each with two lines and its audit event, chained."""
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Bench Fund", currency="CAD")
        accounts = await fund_account_map(session, fund.id)
    cash, income = accounts[CASH_ACCOUNT][0], accounts["income:donation"][0]
    start = utcnow() - timedelta(days=30)
    prev = event_prev = GENESIS
    total = 0
    async with sessionmaker() as session:
        for first in range(1, entries + 1, WRITE_BATCH):
            entry_rows, line_rows, event_rows = [], [], []
            for seq in range(first, min(first + WRITE_BATCH, entries + 1)):
                amount = 100 + seq % 997
                total += amount
                at = start + timedelta(seconds=seq)
                entry_id = uuid4().hex
                memo = "donation"
                lines = [(CASH_ACCOUNT, "debit", amount), ("income:donation", "credit", amount)]
                document = entry_document(
                    entry_id,
                    fund.id,
                    seq,
                    "deposit",
                    canonical_time(at),
                    memo,
                    None,
                    "CAD",
                    amount,
                    amount,
                    lines,
                    prev,
                )
                entry_hash_ = digest(document)
                entry_rows.append(
                    {
                        "id": entry_id,
                        "fund_id": fund.id,
                        "seq": seq,
                        "kind": "deposit",
                        "posted_at": at,
                        "memo": memo,
                        "disbursement_id": None,
                        "total_debits_cents": amount,
                        "total_credits_cents": amount,
                        "prev_hash": prev,
                        "hash": entry_hash_,
                    }
                )
                line_rows += [
                    {"entry_id": entry_id, "position": 0, "account_id": cash, "side": "debit", "amount_cents": amount},
                    {
                        "entry_id": entry_id,
                        "position": 1,
                        "account_id": income,
                        "side": "credit",
                        "amount_cents": amount,
                    },
                ]
                prev = entry_hash_
                event_id = uuid4().hex
                detail = {"entry": entry_id, "amount_cents": amount, "source": "donation"}
                event_hash_ = digest(
                    event_document(event_id, fund.id, seq, at, "deposit", "bench", None, detail, event_prev)
                )
                event_rows.append(
                    {
                        "id": event_id,
                        "fund_id": fund.id,
                        "seq": seq,
                        "at": at,
                        "action": "deposit",
                        "actor_user_id": "bench",
                        "disbursement_id": None,
                        "detail": detail,
                        "prev_hash": event_prev,
                        "hash": event_hash_,
                    }
                )
                event_prev = event_hash_
            await session.execute(insert(JournalEntry), entry_rows)
            await session.execute(insert(JournalLine), line_rows)
            await session.execute(insert(AuditEvent), event_rows)
        await session.execute(
            update(Fund)
            .where(Fund.id == fund.id)
            .values(entry_count=entries, head_hash=prev, audit_count=entries, audit_head_hash=event_prev)
        )
        for account_id in (cash, income):
            await session.execute(
                update(AccountBalance).where(AccountBalance.account_id == account_id).values(balance_cents=total)
            )
        await session.commit()
    return fund.id


# --- the previous verifier, the baseline ------------------------------------------------------------------


async def _previous_walk(
    session: AsyncSession,
    fund_id: str,
    head_hash: str,
    length: int,
    content_check: Callable[[Sequence[JournalEntry]], Awaitable[Callable[[JournalEntry], str | None]]],
) -> ChainCheck:
    prev, expected_seq, count, last_id = GENESIS, 1, 0, None
    while True:
        links = list(
            (
                await session.execute(
                    select(JournalEntry)
                    .where(JournalEntry.seq >= expected_seq, JournalEntry.fund_id == fund_id)
                    .order_by(JournalEntry.seq)
                    .limit(2000)
                )
            )
            .scalars()
            .all()
        )
        if not links:
            break
        content_problem = await content_check(links)
        for link in links:
            if link.seq != expected_seq:
                problem: str | None = "seq_gap"
            elif link.prev_hash != prev:
                problem = "prev_hash"
            else:
                problem = content_problem(link)
            if problem:
                return ChainCheck(False, count, prev, link.id, problem)
            prev, last_id = link.hash, link.id
            expected_seq += 1
            count += 1
        session.expunge_all()
    if head_hash != prev or length != count:
        return ChainCheck(False, count, prev, last_id, "head")
    return ChainCheck(True, count, prev, None, None)


async def previous_verify_journal(session: AsyncSession, fund_id: str) -> ChainCheck:
    fund = await get_fund(session, fund_id)
    currency, head_hash, length = fund.currency, fund.head_hash, fund.entry_count
    codes = dict((await session.execute(select(Account.id, Account.code).where(Account.fund_id == fund_id))).all())
    audited: dict[str, list[int]] = {}
    for (detail,) in await session.execute(select(AuditEvent.detail).where(AuditEvent.fund_id == fund_id)):
        if isinstance(detail, dict) and detail.get("entry"):
            audited.setdefault(str(detail["entry"]), []).append(detail.get("amount_cents"))

    async def entry_problem(entries: Sequence[JournalEntry]) -> Callable[[JournalEntry], str | None]:
        lines: dict[str, list[tuple[str, str, int]]] = {e.id: [] for e in entries}
        rows = await session.execute(
            select(JournalLine.entry_id, JournalLine.account_id, JournalLine.side, JournalLine.amount_cents)
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .where(
                JournalEntry.fund_id == fund_id,
                JournalEntry.seq >= entries[0].seq,
                JournalEntry.seq <= entries[-1].seq,
            )
            .order_by(JournalEntry.seq, JournalLine.position)
        )
        for entry_id, account_id, side, amount in rows:
            lines[entry_id].append((codes.get(account_id, "?"), side, amount))

        def problem(entry: JournalEntry) -> str | None:
            entry_lines = lines[entry.id]
            debits = sum(a for _, s, a in entry_lines if s == "debit")
            credits = sum(a for _, s, a in entry_lines if s == "credit")
            if debits != entry.total_debits_cents or credits != entry.total_credits_cents or debits != credits:
                return "totals"
            if entry.hash != entry_hash(entry, currency, entry_lines):
                return "hash"
            said = audited.get(entry.id, [])
            if len(said) != 1:
                return "no_audit_event"
            return "audit_mismatch" if said[0] != entry.total_debits_cents else None

        return problem

    return await _previous_walk(session, fund_id, head_hash, length, entry_problem)


# --- the run ------------------------------------------------------------------------------------------------


async def _timed(sessionmaker: Any, check: Callable[[AsyncSession], Awaitable[Any]]) -> tuple[float, float, Any]:
    """Wall time, this process's CPU time (the database's own work is not in it) and the result."""
    async with sessionmaker() as session:
        start, cpu = time.perf_counter(), time.process_time()
        result = await check(session)
        return time.perf_counter() - start, time.process_time() - cpu, result


async def run(url: str, entries: int) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessionmaker = make_sessionmaker(engine)
    build_start = time.perf_counter()
    fund_id = await build_fund(sessionmaker, entries)
    print(f"database: {engine.dialect.name}; wrote {entries} entries in {time.perf_counter() - build_start:.1f} s")
    await _timed(sessionmaker, lambda s: verify_journal(s, fund_id))  # warm the caches both share
    before_s, before_cpu, before = await _timed(sessionmaker, lambda s: previous_verify_journal(s, fund_id))
    after_s, after_cpu, after = await _timed(sessionmaker, lambda s: verify_journal(s, fund_id))
    fund_s, fund_cpu, fund = await _timed(sessionmaker, lambda s: verify_fund(s, fund_id))
    await engine.dispose()
    assert before == after, (before, after)
    print(f"journal chain, {after.count} entries, ok={after.ok}:")
    print(f"  ledger.verify.verify_journal   {after_s:.2f} s (CPU here {after_cpu:.2f} s)  target <= {TARGET_S:.0f} s")
    print(
        f"  previous verifier (baseline)   {before_s:.2f} s (CPU here {before_cpu:.2f} s)  "
        f"{before_s / after_s:.1f}x the time"
    )
    print(
        f"both chains and the cross-check (verify_fund, {fund.events.count} audit events, ok={fund.ok}): "
        f"{fund_s:.2f} s (CPU here {fund_cpu:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    if args.url.startswith("postgresql"):
        database = ScratchDatabase.beside(args.url.replace("postgresql+asyncpg://", "postgresql://", 1))
        database.create()
        try:
            asyncio.run(run(database.sqlalchemy_url, args.entries))
        finally:
            database.drop()
    else:
        url = args.url
        if url in ("sqlite", "sqlite+aiosqlite://"):
            url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.db"
        asyncio.run(run(url, args.entries))


if __name__ == "__main__":
    main()
