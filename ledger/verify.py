"""Checking both hash chains of a fund end to end, in batches, naming the first entry that does not hold."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.chain import GENESIS, entry_hash, event_hash
from ledger.journal import get_fund
from ledger.models import Account, AuditEvent, JournalEntry, JournalLine

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


async def verify_journal(session: AsyncSession, fund_id: str) -> ChainCheck:
    fund = await get_fund(session, fund_id)
    currency, head_hash, entry_count = fund.currency, fund.head_hash, fund.entry_count
    codes = dict((await session.execute(select(Account.id, Account.code).where(Account.fund_id == fund_id))).all())
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_id: str | None = None
    while True:
        entries = list(
            (
                await session.execute(
                    select(JournalEntry)
                    .where(JournalEntry.fund_id == fund_id, JournalEntry.seq >= expected_seq)
                    .order_by(JournalEntry.seq)
                    .limit(BATCH)
                )
            )
            .scalars()
            .all()
        )
        if not entries:
            break
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
        for entry in entries:
            problem = None
            entry_lines = lines[entry.id]
            debits = sum(a for _, s, a in entry_lines if s == "debit")
            credits = sum(a for _, s, a in entry_lines if s == "credit")
            if entry.seq != expected_seq:
                problem = "seq_gap"
            elif entry.prev_hash != prev:
                problem = "prev_hash"
            elif debits != entry.total_debits_cents or credits != entry.total_credits_cents or debits != credits:
                problem = "totals"
            elif entry.hash != entry_hash(
                entry_id=entry.id,
                fund_id=entry.fund_id,
                seq=entry.seq,
                kind=entry.kind,
                posted_at=entry.posted_at,
                memo=entry.memo,
                disbursement_id=entry.disbursement_id,
                currency=currency,
                total_debits_cents=entry.total_debits_cents,
                total_credits_cents=entry.total_credits_cents,
                lines=entry_lines,
                prev_hash=entry.prev_hash,
            ):
                problem = "hash"
            if problem:
                return ChainCheck(False, count, prev, entry.id, problem)
            prev = entry.hash
            last_id = entry.id
            expected_seq += 1
            count += 1
        session.expunge_all()  # keep memory flat over 100k entries
    if head_hash != prev or entry_count != count:
        # Entries removed from the end, or the head rewritten: blame the last entry that still stands.
        return ChainCheck(False, count, prev, last_id, "head")
    return ChainCheck(True, count, prev, None, None)


async def verify_events(session: AsyncSession, fund_id: str) -> ChainCheck:
    fund = await get_fund(session, fund_id)
    audit_count, audit_head = fund.audit_count, fund.audit_head_hash
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_id: str | None = None
    while True:
        events = list(
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.fund_id == fund_id, AuditEvent.seq >= expected_seq)
                    .order_by(AuditEvent.seq)
                    .limit(BATCH)
                )
            )
            .scalars()
            .all()
        )
        if not events:
            break
        for event in events:
            problem = None
            if event.seq != expected_seq:
                problem = "seq_gap"
            elif event.prev_hash != prev:
                problem = "prev_hash"
            elif event.hash != event_hash(
                event_id=event.id,
                fund_id=event.fund_id,
                seq=event.seq,
                at=event.at,
                action=event.action,
                actor_user_id=event.actor_user_id,
                disbursement_id=event.disbursement_id,
                detail=event.detail,
                prev_hash=event.prev_hash,
            ):
                problem = "hash"
            if problem:
                return ChainCheck(False, count, prev, event.id, problem)
            prev = event.hash
            last_id = event.id
            expected_seq += 1
            count += 1
        session.expunge_all()
    if audit_head != prev or audit_count != count:
        return ChainCheck(False, count, prev, last_id, "head")
    return ChainCheck(True, count, prev, None, None)


async def verify_fund(session: AsyncSession, fund_id: str) -> FundAudit:
    return FundAudit(journal=await verify_journal(session, fund_id), events=await verify_events(session, fund_id))
