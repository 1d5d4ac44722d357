"""Checking a fund's books: both hash chains end to end, in batches, naming the first link that does not hold;
every posting against its audit event; both chains against the signed checkpoints (with the public key only);
and every balance row against the sum of its journal lines."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import msgspec
from sqlalchemy import DateTime, Select, Text, cast, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.anchor_models import NETWORK_CHAIN, Checkpoint, NetworkEvent
from ledger.chain import (
    GENESIS,
    EntryHasher,
    canonical_time,
    digest,
    entry_document,
    event_document,
    fast_canonical_time,
    network_event_document,
)
from ledger.checkpoints import AnchorCheck, fund_chain, verify_anchor
from ledger.funds import get_fund
from ledger.models import NORMAL_SIDE, Account, AccountBalance, AccountKind, AuditEvent, JournalEntry, JournalLine

BATCH = 5000


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


# A link as the verifier reads it: (seq, id, prev_hash, hash, *what its hash covers), a plain row, no ORM
# object (100,000 of those cost more than hashing them).
Link = Sequence[Any]
# Given one batch of links, a function naming what is wrong with a link's own content (or None).
ContentCheck = Callable[[Sequence[Link]], Awaitable[Callable[[Link], str | None]]]
# The next batch of links from `seq` on, in `seq` order.
Fetch = Callable[[int], Awaitable[Sequence[Link]]]


async def _walk(fetch: Fetch, head_hash: str, length: int, content_check: ContentCheck) -> ChainCheck:
    """Walk one chain in `seq` order: each link follows the one before it, and the fund's head (`head_hash`,
    `length` links) is the last."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_id: str | None = None
    while True:
        links = await fetch(expected_seq)
        if not links:
            break
        content_problem = await content_check(links)
        for link in links:
            seq, link_id, prev_hash, link_hash = link[0], link[1], link[2], link[3]
            if seq != expected_seq:
                problem: str | None = "seq_gap"
            elif prev_hash != prev:
                problem = "prev_hash"
            else:
                problem = content_problem(link)
            if problem:
                return ChainCheck(False, count, prev, link_id, problem)
            prev = link_hash
            last_id = link_id
            expected_seq += 1
            count += 1
    if head_hash != prev or length != count:
        # Links removed from the end, or the head rewritten: blame the last link that still stands.
        return ChainCheck(False, count, prev, last_id, "head")
    return ChainCheck(True, count, prev, None, None)


def _fetcher(session: AsyncSession, columns: Sequence[Any], model: Any, fund_id: str | None) -> Fetch:
    async def fetch(from_seq: int) -> Sequence[Link]:
        query = select(*columns).where(model.seq >= from_seq)
        if fund_id is not None:
            query = query.where(model.fund_id == fund_id)
        return await _rows(session, query.order_by(model.seq).limit(BATCH))

    return fetch


async def _rows(session: AsyncSession, query: Select[Any]) -> Sequence[Sequence[Any]]:
    """The rows of a plain column query, as cheaply as the driver gives them: the ORM's path costs as much as
    the hashing, and on asyncpg even Core's rows cost twice the driver's records. The values are the
    driver's own (UTC datetimes, text), which is all the verifier reads."""
    connection = await session.connection()
    if connection.dialect.driver != "asyncpg":
        return (await connection.execute(query)).all()
    compiled = query.compile(dialect=connection.dialect)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    return await driver.fetch(compiled.string, *(compiled.params[name] for name in compiled.positiontup or ()))


def _decode(text: str | None) -> Any:
    """A JSON column read as text: msgspec decodes it several times faster than the column type's json.loads,
    to the same values (json.loads takes over for anything msgspec refuses, such as a huge integer)."""
    if text is None:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def _amounts_said(amounts: dict[str, list[int]], detail: object) -> None:
    if isinstance(detail, dict) and detail.get("entry"):
        amounts.setdefault(str(detail["entry"]), []).append(detail.get("amount_cents"))  # type: ignore[arg-type]


async def posted_amounts(session: AsyncSession, fund_id: str) -> dict[str, list[int]]:
    """For each journal entry, the amounts its audit events say were posted (deposits, payments and card
    movements each record `entry` and `amount_cents`)."""
    amounts: dict[str, list[int]] = {}
    for (detail,) in await _rows(session, select(cast(AuditEvent.detail, Text)).where(AuditEvent.fund_id == fund_id)):
        _amounts_said(amounts, _decode(detail))
    return amounts


_ENTRY_COLUMNS = (
    JournalEntry.seq,
    JournalEntry.id,
    JournalEntry.prev_hash,
    JournalEntry.hash,
    JournalEntry.kind,
    # Without the UTC column type's conversion: the database hands back UTC, and `fast_canonical_time` gives
    # the same text for an aware UTC value and for SQLite's naive one.
    type_coerce(JournalEntry.posted_at, DateTime(timezone=True)),
    JournalEntry.memo,
    JournalEntry.disbursement_id,
    JournalEntry.total_debits_cents,
    JournalEntry.total_credits_cents,
)


async def verify_journal(
    session: AsyncSession, fund_id: str, audited: dict[str, list[int]] | None = None
) -> ChainCheck:
    """The journal chain, every entry's lines against its totals and hash, and each posting against the
    amount its audit event says (`audited`, from `posted_amounts`, read here when not given)."""
    fund = await get_fund(session, fund_id)
    currency = fund.currency
    codes = dict((await session.execute(select(Account.id, Account.code).where(Account.fund_id == fund_id))).all())
    if audited is None:
        audited = await posted_amounts(session, fund_id)

    hasher = EntryHasher(fund_id, currency)
    prefixes: dict[tuple[str, str], str] = {}  # (account id, side) -> the line's hashed text up to its amount
    no_lines: tuple[list[str], int, int] = ([], 0, 0)

    async def entry_problem(entries: Sequence[Link]) -> Callable[[Link], str | None]:
        first, last = entries[0][0], entries[-1][0]
        rows = await _rows(
            session,
            select(JournalEntry.seq, JournalLine.account_id, JournalLine.side, JournalLine.amount_cents)
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .where(JournalEntry.fund_id == fund_id, JournalEntry.seq >= first, JournalEntry.seq <= last)
            .order_by(JournalEntry.seq, JournalLine.position),
        )
        # Per entry seq (an int on the wire, not a 32-character id): its lines as hashed, in position order,
        # and their debit and credit totals. The rows come in seq order, so an entry's lines are together.
        lines: dict[int, tuple[list[str], int, int]] = {}
        current, hashed, debits, credits = None, [], 0, 0
        for seq, account_id, side, amount in rows:
            if seq != current:
                if current is not None:
                    lines[current] = (hashed, debits, credits)
                current, hashed, debits, credits = seq, [], 0, 0
            prefix = prefixes.get((account_id, side))
            if prefix is None:
                prefix = prefixes[(account_id, side)] = hasher.line_prefix(codes.get(account_id, "?"), side)
            hashed.append(f"{prefix}{amount}]")
            if side == "debit":
                debits += amount
            elif side == "credit":
                credits += amount
        if current is not None:
            lines[current] = (hashed, debits, credits)

        def canonical_hash(entry: Link) -> str:
            """The entry's hash by the definition (`entry_document`), for an entry whose fast hash differs."""
            seq, entry_id, prev_hash, _, kind, posted_at, memo, disbursement_id, debits, credits = entry
            entry_lines = [(codes.get(a, "?"), side, amount) for s, a, side, amount in rows if s == seq]
            document = entry_document(
                entry_id,
                fund_id,
                seq,
                kind,
                canonical_time(posted_at if posted_at.tzinfo else posted_at.replace(tzinfo=UTC)),
                memo,
                disbursement_id,
                currency,
                debits,
                credits,
                entry_lines,
                prev_hash,
            )
            return digest(document)

        def problem(entry: Link) -> str | None:
            seq, entry_id, prev_hash, stored_hash, kind, posted_at, memo, disbursement_id, debits, credits = entry
            hashed_lines, line_debits, line_credits = lines.get(seq, no_lines)
            if line_debits != debits or line_credits != credits or line_debits != line_credits:
                return "totals"
            date = fast_canonical_time(posted_at)
            fast = hasher.digest(
                entry_id, seq, kind, date, memo, disbursement_id, debits, credits, hashed_lines, prev_hash
            )
            # The canonical form is the definition; the fast one only saves time when they agree.
            if stored_hash != fast and stored_hash != canonical_hash(entry):
                return "hash"
            # A rewritten chain can be internally whole: the audit event written with the posting still
            # says what was posted.
            said = audited.get(entry_id, [])
            if len(said) != 1:
                return "no_audit_event"
            return "audit_mismatch" if said[0] != debits else None

        return problem

    fetch = _fetcher(session, _ENTRY_COLUMNS, JournalEntry, fund_id)
    return await _walk(fetch, fund.head_hash, fund.entry_count, entry_problem)


_EVENT_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.id,
    AuditEvent.prev_hash,
    AuditEvent.hash,
    AuditEvent.at,
    AuditEvent.action,
    AuditEvent.actor_user_id,
    AuditEvent.disbursement_id,
    cast(AuditEvent.detail, Text),
)


async def verify_events(session: AsyncSession, fund_id: str, audited: dict[str, list[int]] | None = None) -> ChainCheck:
    """The audit chain; given `audited`, fills it with what each event says was posted, in the same pass."""
    fund = await get_fund(session, fund_id)

    async def event_problem(events: Sequence[Link]) -> Callable[[Link], str | None]:
        def problem(event: Link) -> str | None:
            seq, event_id, prev_hash, stored_hash, at, action, actor, disbursement_id, text = event
            detail = _decode(text)
            if audited is not None:
                _amounts_said(audited, detail)
            document = event_document(event_id, fund_id, seq, at, action, actor, disbursement_id, detail, prev_hash)
            if stored_hash == digest(document):
                return None
            document["detail"] = None if text is None else json.loads(text)  # the column type's own decoding
            return "hash" if stored_hash != digest(document) else None

        return problem

    fetch = _fetcher(session, _EVENT_COLUMNS, AuditEvent, fund_id)
    return await _walk(fetch, fund.audit_head_hash, fund.audit_count, event_problem)


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
    audited: dict[str, list[int]] = {}
    events = await verify_events(session, fund_id, audited)
    stored_events = (
        await session.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.fund_id == fund_id))
    ).scalar_one()
    if not events.ok or stored_events != events.count:
        # The walk stopped early or passed rows by: count what every stored event says, as a lone check would.
        audited = await posted_amounts(session, fund_id)
    journal = await verify_journal(session, fund_id, audited)
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

    async def event_problem(events: Sequence[Link]) -> Callable[[Link], str | None]:
        def problem(event: Link) -> str | None:
            seq, event_id, prev_hash, stored_hash, at, action, actor, text = event
            document = network_event_document(event_id, seq, at, action, actor, _decode(text), prev_hash)
            if stored_hash == digest(document):
                return None
            document["detail"] = None if text is None else json.loads(text)
            return "hash" if stored_hash != digest(document) else None

        return problem

    columns = (
        NetworkEvent.seq,
        NetworkEvent.id,
        NetworkEvent.prev_hash,
        NetworkEvent.hash,
        NetworkEvent.at,
        NetworkEvent.action,
        NetworkEvent.actor_user_id,
        cast(NetworkEvent.detail, Text),
    )
    events = await _walk(_fetcher(session, columns, NetworkEvent, None), head_hash, count, event_problem)
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
