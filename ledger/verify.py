"""Checking a fund's books: both hash chains end to end, in batches, naming the first link that does not hold,
and every balance row against the sum of its journal lines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.chain import GENESIS, entry_hash, event_hash
from ledger.funds import get_fund
from ledger.models import NORMAL_SIDE, Account, AccountBalance, AccountKind, AuditEvent, JournalEntry, JournalLine

BATCH = 2000


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    count: int
    head_hash: str
    first_bad_id: str | None
    problem: str | None  # a machine word: seq_gap, prev_hash, hash, totals, head


@dataclass(frozen=True)
class FundAudit:
    journal: ChainCheck
    events: ChainCheck

    @property
    def ok(self) -> bool:
        return self.journal.ok and self.events.ok


# Given one batch of links, a function naming what is wrong with a link's own content (or None).
ContentCheck = Callable[[Sequence[Any]], Awaitable[Callable[[Any], str | None]]]


async def _walk(
    session: AsyncSession,
    model: type[JournalEntry] | type[AuditEvent],
    fund_id: str,
    head_hash: str,
    length: int,
    content_check: ContentCheck,
) -> ChainCheck:
    """Walk one chain in `seq` order: each link follows the one before it, and the fund's head (`head_hash`,
    `length` links) is the last."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_id: str | None = None
    while True:
        links = list(
            (
                await session.execute(
                    select(model)
                    .where(model.fund_id == fund_id, model.seq >= expected_seq)
                    .order_by(model.seq)  # type: ignore[arg-type]
                    .limit(BATCH)
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
            prev = link.hash
            last_id = link.id
            expected_seq += 1
            count += 1
        session.expunge_all()  # keep memory flat over 100k entries
    if head_hash != prev or length != count:
        # Links removed from the end, or the head rewritten: blame the last link that still stands.
        return ChainCheck(False, count, prev, last_id, "head")
    return ChainCheck(True, count, prev, None, None)


async def verify_journal(session: AsyncSession, fund_id: str) -> ChainCheck:
    fund = await get_fund(session, fund_id)
    currency = fund.currency
    codes = dict((await session.execute(select(Account.id, Account.code).where(Account.fund_id == fund_id))).all())

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
            return "hash" if entry.hash != entry_hash(entry, currency, entry_lines) else None

        return problem

    return await _walk(session, JournalEntry, fund_id, fund.head_hash, fund.entry_count, entry_problem)


async def verify_events(session: AsyncSession, fund_id: str) -> ChainCheck:
    fund = await get_fund(session, fund_id)

    async def event_problem(events: Sequence[AuditEvent]) -> Callable[[AuditEvent], str | None]:
        return lambda event: "hash" if event.hash != event_hash(event) else None

    return await _walk(session, AuditEvent, fund_id, fund.audit_head_hash, fund.audit_count, event_problem)


async def verify_fund(session: AsyncSession, fund_id: str) -> FundAudit:
    return FundAudit(journal=await verify_journal(session, fund_id), events=await verify_events(session, fund_id))


@dataclass(frozen=True)
class BooksCheck:
    """Debits equal credits over the whole fund, and every balance row equals the sum of its lines."""

    debits_cents: int
    credits_cents: int
    mismatched_accounts: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.debits_cents == self.credits_cents and not self.mismatched_accounts


async def check_books(session: AsyncSession, fund_id: str) -> BooksCheck:
    rows = await session.execute(
        select(Account.code, Account.kind, JournalLine.side, func.coalesce(func.sum(JournalLine.amount_cents), 0))
        .join(JournalLine, JournalLine.account_id == Account.id, isouter=True)
        .where(Account.fund_id == fund_id)
        .group_by(Account.code, Account.kind, JournalLine.side)
    )
    derived: dict[str, int] = {}
    debits = credits = 0
    for code, kind, side, total in rows:
        total = int(total)
        derived.setdefault(code, 0)
        if side is None:
            continue
        if side == "debit":
            debits += total
        else:
            credits += total
        derived[code] += total if side == NORMAL_SIDE[AccountKind(kind)] else -total
    stored = dict(
        (
            await session.execute(
                select(Account.code, AccountBalance.balance_cents)
                .join(AccountBalance, AccountBalance.account_id == Account.id)
                .where(Account.fund_id == fund_id)
            )
        ).all()
    )
    mismatched = tuple(sorted(code for code in derived if stored.get(code) != derived[code]))
    return BooksCheck(debits, credits, mismatched)
