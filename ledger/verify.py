"""Checking a fund's books: both hash chains end to end, in batches, naming the first link that does not hold;
every posting against its audit event; both chains against the signed checkpoints (with the public key only);
and every balance row against the sum of its journal lines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.anchor_models import NETWORK_CHAIN, Checkpoint, NetworkEvent
from ledger.chain import GENESIS, entry_hash, event_hash, network_event_hash
from ledger.checkpoints import AnchorCheck, fund_chain, verify_anchor
from ledger.funds import get_fund
from ledger.models import NORMAL_SIDE, Account, AccountBalance, AccountKind, AuditEvent, JournalEntry, JournalLine

BATCH = 2000


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    count: int
    head_hash: str
    first_bad_id: str | None
    # A machine word: seq_gap, prev_hash, hash, totals, head; for the journal also no_audit_event and
    # audit_mismatch (the posting's audit event is missing, repeated or names another amount).
    problem: str | None


@dataclass(frozen=True)
class FundAudit:
    journal: ChainCheck
    events: ChainCheck
    anchor: AnchorCheck | None = None  # None when no public key was given

    @property
    def ok(self) -> bool:
        return self.journal.ok and self.events.ok and (self.anchor is None or self.anchor.ok)


# Given one batch of links, a function naming what is wrong with a link's own content (or None).
ContentCheck = Callable[[Sequence[Any]], Awaitable[Callable[[Any], str | None]]]


async def _walk(
    session: AsyncSession,
    model: type[JournalEntry] | type[AuditEvent] | type[NetworkEvent],
    fund_id: str | None,
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
                    .where(model.seq >= expected_seq)
                    .where(*([model.fund_id == fund_id] if fund_id is not None else []))  # type: ignore[union-attr]
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


async def posted_amounts(session: AsyncSession, fund_id: str) -> dict[str, list[int]]:
    """For each journal entry, the amounts its audit events say were posted (deposits, payments and card
    movements each record `entry` and `amount_cents`)."""
    amounts: dict[str, list[int]] = {}
    rows = await session.execute(select(AuditEvent.detail).where(AuditEvent.fund_id == fund_id))
    for (detail,) in rows:
        if isinstance(detail, dict) and detail.get("entry"):
            amounts.setdefault(str(detail["entry"]), []).append(detail.get("amount_cents"))  # type: ignore[arg-type]
    return amounts


async def verify_journal(session: AsyncSession, fund_id: str) -> ChainCheck:
    fund = await get_fund(session, fund_id)
    currency = fund.currency
    codes = dict((await session.execute(select(Account.id, Account.code).where(Account.fund_id == fund_id))).all())
    audited = await posted_amounts(session, fund_id)

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
            # A rewritten chain can be internally whole: the audit event written with the posting still
            # says what was posted.
            said = audited.get(entry.id, [])
            if len(said) != 1:
                return "no_audit_event"
            return "audit_mismatch" if said[0] != entry.total_debits_cents else None

        return problem

    return await _walk(session, JournalEntry, fund_id, fund.head_hash, fund.entry_count, entry_problem)


async def verify_events(session: AsyncSession, fund_id: str) -> ChainCheck:
    fund = await get_fund(session, fund_id)

    async def event_problem(events: Sequence[AuditEvent]) -> Callable[[AuditEvent], str | None]:
        return lambda event: "hash" if event.hash != event_hash(event) else None

    return await _walk(session, AuditEvent, fund_id, fund.audit_head_hash, fund.audit_count, event_problem)


async def _anchor(
    session: AsyncSession,
    chain: str,
    length: int,
    public_key: str | None,
    checkpoints: Sequence[Checkpoint] | None,
) -> AnchorCheck | None:
    if not public_key:
        return None
    anchor = await verify_anchor(session, chain, public_key, checkpoints)
    if anchor.problem == "no_checkpoint" and length == 0:
        return AnchorCheck(True, None, 0, 0, 0)  # nothing written yet, nothing to anchor
    return anchor


async def verify_fund(
    session: AsyncSession,
    fund_id: str,
    *,
    public_key: str | None = None,
    checkpoints: Sequence[Checkpoint] | None = None,
) -> FundAudit:
    """Both chains, the postings against their audit events and, given the public key, the signed
    checkpoints (the database's, or `checkpoints` kept elsewhere)."""
    journal = await verify_journal(session, fund_id)
    events = await verify_events(session, fund_id)
    fund = await get_fund(session, fund_id)
    length = fund.entry_count + fund.audit_count
    anchor = await _anchor(session, fund_chain(fund_id), length, public_key, checkpoints)
    return FundAudit(journal=journal, events=events, anchor=anchor)


@dataclass(frozen=True)
class NetworkAudit:
    events: ChainCheck
    anchor: AnchorCheck | None

    @property
    def ok(self) -> bool:
        return self.events.ok and (self.anchor is None or self.anchor.ok)


async def verify_network(
    session: AsyncSession, *, public_key: str | None = None, checkpoints: Sequence[Checkpoint] | None = None
) -> NetworkAudit:
    """The network chain of admin actions, end to end and against its checkpoints."""
    from ledger.network_audit import network_head

    head = await network_head(session)
    count, head_hash = head.count, head.head_hash

    async def event_problem(events: Sequence[NetworkEvent]) -> Callable[[NetworkEvent], str | None]:
        return lambda event: "hash" if event.hash != network_event_hash(event) else None

    events = await _walk(session, NetworkEvent, None, head_hash, count, event_problem)
    return NetworkAudit(events, await _anchor(session, NETWORK_CHAIN, count, public_key, checkpoints))


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
