"""Issue 15's lean paths: the chain verifier gives the previous verifier's verdict, lists read in one query
whatever their length, and on SQLite a read does not wait for a writer."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from beds.models import BedPool, PoolChange, Profile
from bench.verify import previous_verify_journal
from exchange.db import reading
from ledger.chain import EntryHasher, canonical_time, entry_hash, fast_canonical_time
from ledger.deposits import deposit
from ledger.funds import create_fund
from ledger.models import JournalEntry
from ledger.payments import pay
from ledger.verify import verify_events, verify_fund, verify_journal
from tests.conftest import Network, login_page_session
from tests.test_ledger_support import (
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)

# --- the verifier ---------------------------------------------------------------------------------------------

NOTES = ["", 'quoted "twice" \\ back', "Café «Noël» ✓ \u2028 line\nnew\ttab \x01", "plain"]


@pytest.mark.parametrize(
    ("memo", "disbursement_id", "posted_at"),
    [
        ("deposit", None, datetime(2026, 12, 1, 22, 0, tzinfo=UTC)),
        (NOTES[1], "d" * 32, datetime(2026, 3, 8, 7, 0, 0, 1, tzinfo=UTC)),
        (NOTES[2], None, datetime(2026, 11, 1, 5, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_the_fast_entry_hash_is_the_canonical_one(memo: str, disbursement_id: str | None, posted_at: datetime) -> None:
    entry = JournalEntry(
        id="e" * 32,
        fund_id="f" * 32,
        seq=7,
        kind="payment",
        posted_at=posted_at,
        memo=memo,
        disbursement_id=disbursement_id,
        total_debits_cents=12_345,
        total_credits_cents=12_345,
        prev_hash="a" * 64,
        hash="",
    )
    lines = [("expenses:hotel", "debit", 12_000), ("expenses:food", "debit", 345), ("assets:cash", "credit", 12_345)]
    hasher = EntryHasher(entry.fund_id, "CAD")
    assert fast_canonical_time(posted_at) == canonical_time(posted_at)
    assert fast_canonical_time(posted_at.replace(tzinfo=None)) == canonical_time(posted_at)  # SQLite's naive UTC
    fast = hasher.digest(
        entry.id,
        entry.seq,
        entry.kind,
        fast_canonical_time(posted_at),
        memo,
        disbursement_id,
        12_345,
        12_345,
        [f"{hasher.line_prefix(account, side)}{cents}]" for account, side, cents in lines],
        entry.prev_hash,
    )
    assert fast == entry_hash(entry, "CAD", lines)


async def _fund_with_deposits(sessionmaker: async_sessionmaker, network: Network) -> tuple[str, list[str]]:
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Verified Fund", currency="CAD")
    ids = []
    for i in range(6):
        async with sessionmaker() as session:
            done = await deposit(
                session,
                fund.id,
                amount_cents=10_000 + i,
                source="donation",
                note=NOTES[i % len(NOTES)],
                actor_user_id=network["admin"].id,
            )
            ids.append(done.entry.entry.id)
    return fund.id, ids


Tamper = Callable[[Any, list[str]], Awaitable[None]]


async def _nothing(conn: Any, ids: list[str]) -> None:
    return None


async def _one_line(conn: Any, ids: list[str]) -> None:
    await conn.execute(
        text("UPDATE ledger_journal_line SET amount_cents = amount_cents + 1 WHERE entry_id = :e AND position = 0"),
        {"e": ids[2]},
    )


async def _whole_entry(conn: Any, ids: list[str]) -> None:
    await conn.execute(text("UPDATE ledger_journal_line SET amount_cents = 300 WHERE entry_id = :e"), {"e": ids[2]})
    await conn.execute(
        text("UPDATE ledger_journal_entry SET total_debits_cents = 300, total_credits_cents = 300 WHERE id = :e"),
        {"e": ids[2]},
    )


async def _memo(conn: Any, ids: list[str]) -> None:
    await conn.execute(text("UPDATE ledger_journal_entry SET memo = 'donation: Noël' WHERE id = :e"), {"e": ids[1]})


async def _date(conn: Any, ids: list[str]) -> None:
    await conn.execute(
        text("UPDATE ledger_journal_entry SET posted_at = :at WHERE id = :e"),
        {"e": ids[4], "at": datetime.now(UTC) - timedelta(days=3)},
    )


async def _removed(conn: Any, ids: list[str]) -> None:
    await conn.execute(text("DELETE FROM ledger_journal_line WHERE entry_id = :e"), {"e": ids[3]})
    await conn.execute(text("DELETE FROM ledger_journal_entry WHERE id = :e"), {"e": ids[3]})


async def _tail(conn: Any, ids: list[str]) -> None:
    await conn.execute(text("DELETE FROM ledger_journal_line WHERE entry_id = :e"), {"e": ids[-1]})
    await conn.execute(text("DELETE FROM ledger_journal_entry WHERE id = :e"), {"e": ids[-1]})


async def _lines_gone(conn: Any, ids: list[str]) -> None:
    await conn.execute(text("DELETE FROM ledger_journal_line WHERE entry_id = :e"), {"e": ids[1]})


async def _event_amount(conn: Any, ids: list[str]) -> None:
    detail = json.dumps({"entry": ids[1], "amount_cents": 1, "source": "donation"})
    await conn.execute(text("UPDATE ledger_audit_event SET detail = :d WHERE seq = 2"), {"d": detail})


async def _event_removed(conn: Any, ids: list[str]) -> None:
    await conn.execute(text("DELETE FROM ledger_audit_event WHERE seq = 3"))


TAMPERS: dict[str, tuple[Tamper, int | None, str | None, str | None]] = {
    # name: (tamper, index of the entry named first bad, journal problem, audit chain problem)
    "nothing": (_nothing, None, None, None),
    "one line": (_one_line, 2, "totals", None),
    "whole entry": (_whole_entry, 2, "hash", None),
    "memo": (_memo, 1, "hash", None),
    "date": (_date, 4, "hash", None),
    "entry removed": (_removed, 4, "seq_gap", None),
    "tail removed": (_tail, 4, "head", None),
    "lines removed": (_lines_gone, 1, "totals", None),
    "audit amount": (_event_amount, 1, "audit_mismatch", "hash"),
    "audit event removed": (_event_removed, 2, "no_audit_event", "seq_gap"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
async def test_the_verifier_gives_the_previous_verdict_on_a_tampered_chain(
    name: str, sessionmaker: async_sessionmaker, engine: AsyncEngine, network: Network
) -> None:
    tamper, bad, journal_problem, events_problem = TAMPERS[name]
    fund_id, ids = await _fund_with_deposits(sessionmaker, network)
    async with engine.begin() as conn:
        await tamper(conn, ids)
    async with sessionmaker() as session:
        previous = await previous_verify_journal(session, fund_id)
    async with sessionmaker() as session:
        journal = await verify_journal(session, fund_id)
    async with sessionmaker() as session:
        events = await verify_events(session, fund_id)
    async with sessionmaker() as session:
        audit = await verify_fund(session, fund_id)
    assert journal == previous == audit.journal
    assert events == audit.events
    assert journal.problem == journal_problem and events.problem == events_problem
    assert journal.first_bad_id == (ids[bad] if bad is not None else None)
    assert audit.ok is (journal_problem is None and events_problem is None)


# --- statements per list ----------------------------------------------------------------------------------------

_counting: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("counting", default=None)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements this task sends to `engine` (the app's sweeper, in its own task, is not counted)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        mine = _counting.get()
        if mine is not None:
            mine.append(statement)

    token = _counting.set(seen)
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        _counting.reset(token)


async def _operations(client: AsyncTestClient, network: Network, count: int) -> None:
    for i in range(count):
        start = datetime.now(UTC) + timedelta(hours=1 + i)
        body = {
            "code_name": f"NIGHTJAR-{i}",
            "province": "QC",
            "city": "Montréal",
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=5)).isoformat(),
            "needs": [{"profile": "women", "count": 1}, {"profile": "family", "count": 1}],
        }
        answer = await client.post("/api/v1/operations", json=body, headers=network["police"].headers)
        assert answer.status_code == 201, answer.text


async def test_the_operations_list_reads_needs_once_for_any_number_of_operations(
    client: AsyncTestClient, network: Network
) -> None:
    engine = client.app.state.engine
    counts = []
    for total, more in ((1, 1), (20, 19)):
        await _operations(client, network, more)
        await client.get("/api/v1/operations", headers=network["police"].headers)  # the token's last use noted
        with statements(engine) as seen:
            answer = await client.get("/api/v1/operations", headers=network["police"].headers)
        assert answer.status_code == 200 and len(answer.json()) == total
        assert all(len(operation["needs"]) == 2 for operation in answer.json())
        counts.append(len(seen))
    assert 0 < counts[0] == counts[1], counts


async def _pools(sessionmaker: async_sessionmaker, facility_id: str, count: int) -> None:
    async with sessionmaker() as session:
        for i in range(count):
            pool = BedPool(facility_id=facility_id, profile=Profile.MEN, capacity=5 + i)
            session.add(pool)
            await session.flush()
            for n in range(12):
                session.add(
                    PoolChange(
                        pool_id=pool.id,
                        reason="arrival",
                        at=datetime.now(UTC) - timedelta(minutes=60 - n),
                        capacity_before=pool.capacity,
                        occupied_before=n,
                        out_of_service_before=0,
                        held_before=0,
                        capacity_after=pool.capacity,
                        occupied_after=n + 1,
                        out_of_service_after=0,
                        held_after=0,
                    )
                )
        await session.commit()


async def test_the_facility_page_reads_history_once_for_any_number_of_pools(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    engine = client.app.state.engine
    facility = network.facilities["b"]  # shelter B's men pool, then 19 more
    await login_page_session(client, "shelter_b")
    counts = []
    for added in (0, 19):
        await _pools(sessionmaker, facility.id, added)
        with statements(engine) as seen:
            page = await client.get(f"/facilities/{facility.id}")
        assert page.status_code == 200
        counts.append(len(seen))
    assert 0 < counts[0] == counts[1], counts


# --- SQLite: reads do not take the write lock ----------------------------------------------------------------------


async def test_two_reads_do_not_wait_for_an_open_write(
    client: AsyncTestClient, network: Network, engine: AsyncEngine
) -> None:
    police = network["police"].headers
    # The token's last use is noted on its first request (a write); after that a GET only reads.
    assert (await client.get("/api/v1/facilities", headers=police)).status_code == 200
    pool = network.pools["a"]
    async with engine.connect() as conn:
        await conn.begin()  # SQLite: BEGIN IMMEDIATE, the write lock is held from here to the rollback
        await conn.execute(text("UPDATE bed_pool SET capacity = capacity + 1 WHERE id = :id"), {"id": pool.id})
        reads = asyncio.gather(
            client.get("/api/v1/facilities", headers=police),
            client.get(f"/api/v1/facilities/{pool.facility_id}", headers=police),
        )
        # The busy timeout is 30 s: a read that took the write lock would still be waiting.
        listing, one = await asyncio.wait_for(reads, timeout=10)
        await conn.rollback()
    assert listing.status_code == 200 and one.status_code == 200
    assert any(p["id"] == pool.id for f in listing.json() for p in f["pools"])


# --- round trips of a posting --------------------------------------------------------------------------------------


@contextmanager
def round_trips(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement, BEGIN and COMMIT/ROLLBACK sent through `engine` (SQLite's BEGIN is a statement)."""
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        seen.append(sql)

    def begin(_conn: Any) -> None:
        if engine.dialect.name != "sqlite":
            seen.append("BEGIN")

    def end(_conn: Any) -> None:
        seen.append("END")

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", statement),
        ("begin", begin),
        ("commit", end),
        ("rollback", end),
    ]
    for name, hook in hooks:
        event.listen(engine.sync_engine, name, hook)
    try:
        yield seen
    finally:
        for name, hook in hooks:
            event.remove(engine.sync_engine, name, hook)


async def test_a_deposit_and_a_manual_payment_take_few_round_trips(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker, engine: AsyncEngine
) -> None:
    with round_trips(engine) as deposit_trips:
        async with sessionmaker() as session:
            await deposit(session, fund_id, amount_cents=5_000, source="grant", actor_user_id=network["admin"].id)
    code = await new_case(client, network["worker"])
    asked = await request_disbursement(client, network["worker"], fund_id, code, amount_cents=2_500)
    assert asked.status_code == 201 and asked.json()["status"] == "approved", asked.text
    with round_trips(engine) as payment_trips:
        async with sessionmaker() as session:
            paid = await pay(session, asked.json()["id"], method="manual", actor_user_id=network["approver"].id)
    assert paid.created and paid.disbursement.status == "paid"
    # Before issue 15: 19 for a deposit, 28 for a manual payment.
    assert len(deposit_trips) <= 8, deposit_trips
    assert len(payment_trips) <= 13, payment_trips
    async with sessionmaker() as session:
        assert (await verify_fund(session, fund_id)).ok


async def test_a_read_that_writes_after_another_writer_committed_still_writes(
    network: Network, engine: AsyncEngine, sessionmaker: async_sessionmaker
) -> None:
    """A GET that notes something (a token's last use) reads first, in a deferred transaction; another writer
    commits meanwhile. Upgrading that read to a write is refused at once on SQLite (its snapshot is stale),
    so the write lock is taken afresh before the first write."""
    pool = network.pools["a"]
    token = reading.set(True)
    try:
        async with sessionmaker() as session:
            before = (await session.execute(select(BedPool.capacity).where(BedPool.id == pool.id))).scalar_one()
            reading.set(False)
            async with engine.begin() as other:  # a writer, while the read's transaction is open
                await other.execute(text("UPDATE bed_pool SET occupied = occupied + 1 WHERE id = :id"), {"id": pool.id})
            reading.set(True)
            await session.execute(
                update(BedPool).where(BedPool.id == pool.id, BedPool.capacity == before).values(capacity=before + 5)
            )
            await session.commit()
    finally:
        reading.reset(token)
    async with sessionmaker() as session:
        capacity, occupied = (
            await session.execute(select(BedPool.capacity, BedPool.occupied).where(BedPool.id == pool.id))
        ).one()
    assert (capacity, occupied) == (before + 5, pool.occupied + 1)
