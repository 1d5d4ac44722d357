"""The double-entry journal: balanced entries appended to a fund's hash chain, moving the balances.

Each entry's lines are checked (debits equal credits, positive cents, known accounts), written, read back
and applied to the account balances in the caller's transaction, under the fund lock (`ledger.funds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.chain import GENESIS, entry_hash
from ledger.errors import Conflict, Invalid
from ledger.funds import fund_account_map
from ledger.models import NORMAL_SIDE, Account, AccountBalance, Fund, JournalEntry, JournalLine
from ledger.timeutil import utcnow

SIDES = ("debit", "credit")


@dataclass(frozen=True)
class LineSpec:
    account_code: str
    side: str
    amount_cents: int


@dataclass(frozen=True)
class LineView:
    account: str
    side: str
    amount_cents: int


@dataclass(frozen=True)
class EntryView:
    entry: JournalEntry
    lines: tuple[LineView, ...]


def require_cents(amount_cents: object, what: str = "amount_cents") -> int:
    # bool is an int in Python; True cents is not money.
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise Invalid("invalid_amount", f"{what} must be a whole number of cents.")
    if amount_cents <= 0:
        raise Invalid("invalid_amount", f"{what} must be more than zero.")
    return amount_cents


def _check_lines(lines: Sequence[LineSpec]) -> tuple[int, int]:
    if len(lines) < 2:
        raise Invalid("unbalanced_entry", "An entry needs at least two lines.")
    debits = credits = 0
    for line in lines:
        require_cents(line.amount_cents)
        if line.side not in SIDES:
            raise Invalid("invalid_side", "A line is a debit or a credit.")
        if line.side == "debit":
            debits += line.amount_cents
        else:
            credits += line.amount_cents
    if debits != credits:
        raise Invalid("unbalanced_entry", "Debits must equal credits.", debits_cents=debits, credits_cents=credits)
    return debits, credits


async def post_entry(
    session: AsyncSession,
    fund: Fund,
    *,
    kind: str,
    lines: Sequence[LineSpec],
    memo: str = "",
    posted_at: datetime | None = None,
    disbursement_id: str | None = None,
    idempotency_user_id: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> JournalEntry:
    """Append one balanced entry to `fund`'s chain and move the balances. The caller holds `lock_fund`
    and commits; nothing is visible to anyone until then."""
    debits, credits = _check_lines(lines)
    account_map = await fund_account_map(session, fund.id)
    accounts = {code: account_id for code, (account_id, _) in account_map.items()}
    for line in lines:
        if line.account_code not in accounts:
            raise Invalid("unknown_account", f"No account {line.account_code} in this fund.")
    entry = JournalEntry(
        fund_id=fund.id,
        seq=fund.entry_count + 1,
        kind=kind,
        posted_at=posted_at or utcnow(),
        memo=memo,
        disbursement_id=disbursement_id,
        total_debits_cents=debits,
        total_credits_cents=credits,
        prev_hash=fund.head_hash or GENESIS,
        hash="",
        idempotency_user_id=idempotency_user_id if idempotency_key else None,
        idempotency_key=idempotency_key,
        request_hash=request_hash if idempotency_key else None,
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
                    # What is pending stays covered: a payment voids its pending transfer before it posts.
                    AccountBalance.balance_cents + delta >= AccountBalance.committed_cents,
                )
                .values(balance_cents=AccountBalance.balance_cents + delta)
                .returning(AccountBalance.account_id)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        if moved is None:
            raise Conflict("insufficient_funds", f"Account {line.account_code} cannot go below what it owes.")
    # Read back what the database now holds for this entry: the totals are only trusted if the lines agree.
    sums = dict(
        (
            await session.execute(
                select(JournalLine.side, func.sum(JournalLine.amount_cents))
                .where(JournalLine.entry_id == entry.id)
                .group_by(JournalLine.side)
            )
        ).all()
    )
    if int(sums.get("debit", 0)) != debits or int(sums.get("credit", 0)) != credits:
        raise Conflict("unbalanced_entry", "The stored lines do not match the entry's totals.")
    fund.entry_count = entry.seq
    fund.head_hash = entry.hash
    session.add(fund)
    await session.flush()
    return entry


async def entry_views(session: AsyncSession, entries: Sequence[JournalEntry]) -> list[EntryView]:
    if not entries:
        return []
    ids = [e.id for e in entries]
    rows = await session.execute(
        select(JournalLine.entry_id, Account.code, JournalLine.side, JournalLine.amount_cents)
        .join(Account, Account.id == JournalLine.account_id)
        .where(JournalLine.entry_id.in_(ids))  # type: ignore[attr-defined]
        .order_by(JournalLine.entry_id, JournalLine.position)
    )
    lines: dict[str, list[LineView]] = {i: [] for i in ids}
    for entry_id, code, side, amount in rows:
        lines[entry_id].append(LineView(code, side, amount))
    return [EntryView(e, tuple(lines[e.id])) for e in entries]


async def list_entries(
    session: AsyncSession,
    fund_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[EntryView]:
    """Newest first; `start` inclusive, `end` exclusive."""
    query = select(JournalEntry).where(JournalEntry.fund_id == fund_id)
    if start is not None:
        query = query.where(JournalEntry.posted_at >= start)
    if end is not None:
        query = query.where(JournalEntry.posted_at < end)
    query = query.order_by(JournalEntry.seq.desc())  # type: ignore[attr-defined]
    if limit is not None:
        query = query.limit(limit)
    entries = list((await session.execute(query)).scalars().all())
    return await entry_views(session, entries)
