"""Funds, accounts, the double-entry journal, balances, commitments and the journal's hash chain.

Every write takes the fund row first (`lock_fund`), then touches balances; so appends to a fund's chain
are serialised (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE already holds the write lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.chain import GENESIS, entry_hash
from ledger.errors import Conflict, Invalid, NotFound
from ledger.models import (
    CASH_ACCOUNT,
    CATEGORIES,
    NORMAL_SIDE,
    Account,
    AccountBalance,
    AccountKind,
    DepositSource,
    Fund,
    JournalEntry,
    JournalLine,
    RuleSetVersion,
)
from ledger.rules import DEFAULT_RULES, rules_to_document
from ledger.timeutil import utcnow

SIDES = ("debit", "credit")
CURRENCIES = ("CAD", "USD", "EUR")


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


@dataclass(frozen=True)
class FundSummary:
    id: str
    name: str
    currency: str
    balance_cents: int
    committed_cents: int

    @property
    def available_cents(self) -> int:
        return self.balance_cents - self.committed_cents


def fund_accounts() -> list[tuple[str, AccountKind]]:
    return [
        (CASH_ACCOUNT, AccountKind.ASSET),
        *((f"income:{source.value}", AccountKind.INCOME) for source in DepositSource),
        *((f"expenses:{category}", AccountKind.EXPENSE) for category in CATEGORIES),
    ]


def require_cents(amount_cents: object, what: str = "amount_cents") -> int:
    # bool is an int in Python; True cents is not money.
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise Invalid("invalid_amount", f"{what} must be a whole number of cents.")
    if amount_cents <= 0:
        raise Invalid("invalid_amount", f"{what} must be more than zero.")
    return amount_cents


async def create_fund(session: AsyncSession, *, name: str, currency: str = "CAD", now: datetime | None = None) -> Fund:
    """A fund with its accounts, zero balances and the default rule set as version 1."""
    name = name.strip()
    if not name:
        raise Invalid("invalid_name", "A fund needs a name.")
    if currency not in CURRENCIES:
        raise Invalid("wrong_currency", f"Unsupported currency {currency}.")
    fund = Fund(name=name, currency=currency, created_at=now or utcnow())
    session.add(fund)
    await session.flush()
    for code, kind in fund_accounts():
        account = Account(fund_id=fund.id, code=code, kind=kind)
        session.add(account)
        await session.flush()
        session.add(AccountBalance(account_id=account.id, fund_id=fund.id))
    session.add(
        RuleSetVersion(
            fund_id=fund.id, version=1, document=rules_to_document(DEFAULT_RULES), created_at=now or utcnow()
        )
    )
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("fund_exists", "A fund with this name exists.") from exc
    return fund


async def lock_fund(session: AsyncSession, fund_id: str) -> Fund:
    fund = (
        await session.execute(
            select(Fund).where(Fund.id == fund_id).with_for_update().execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if fund is None:
        raise NotFound("fund_not_found", "No such fund.")
    return fund


async def get_fund(session: AsyncSession, fund_id: str) -> Fund:
    fund = await session.get(Fund, fund_id)
    if fund is None:
        raise NotFound("fund_not_found", "No such fund.")
    return fund


async def list_funds(session: AsyncSession) -> list[Fund]:
    return list((await session.execute(select(Fund).order_by(Fund.name))).scalars().all())


async def fund_summary(session: AsyncSession, fund_id: str) -> FundSummary:
    """One indexed row read: the cost does not grow with the number of entries."""
    row = (
        await session.execute(
            select(Fund.id, Fund.name, Fund.currency, AccountBalance.balance_cents, AccountBalance.committed_cents)
            .join(Account, Account.fund_id == Fund.id)
            .join(AccountBalance, AccountBalance.account_id == Account.id)
            .where(Fund.id == fund_id, Account.code == CASH_ACCOUNT)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("fund_not_found", "No such fund.")
    return FundSummary(*row)


# fund id -> code -> (account id, kind). A fund's accounts are created with it and never change, so the
# map is read once per process; this keeps two queries out of every posting.
_accounts: dict[str, dict[str, tuple[str, AccountKind]]] = {}


async def fund_account_map(session: AsyncSession, fund_id: str) -> dict[str, tuple[str, AccountKind]]:
    cached = _accounts.get(fund_id)
    if cached is None:
        rows = await session.execute(select(Account.code, Account.id, Account.kind).where(Account.fund_id == fund_id))
        cached = {code: (account_id, AccountKind(kind)) for code, account_id, kind in rows.all()}
        if not cached:
            raise NotFound("fund_not_found", "No such fund.")
        _accounts[fund_id] = cached
    return cached


async def account_ids(session: AsyncSession, fund_id: str) -> dict[str, str]:
    """code -> account id for one fund."""
    return {code: account_id for code, (account_id, _) in (await fund_account_map(session, fund_id)).items()}


async def cash_account_id(session: AsyncSession, fund_id: str) -> str:
    return (await fund_account_map(session, fund_id))[CASH_ACCOUNT][0]


async def commit_funds(session: AsyncSession, fund_id: str, amount_cents: int) -> None:
    """Open a pending transfer: the conditional UPDATE is the check, so two approvals cannot both pass it."""
    cash = await cash_account_id(session, fund_id)
    done = (
        await session.execute(
            update(AccountBalance)
            .where(
                AccountBalance.account_id == cash,
                AccountBalance.balance_cents - AccountBalance.committed_cents >= amount_cents,
            )
            .values(committed_cents=AccountBalance.committed_cents + amount_cents)
            .returning(AccountBalance.account_id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if done is None:
        summary = await fund_summary(session, fund_id)
        raise Conflict(
            "insufficient_funds",
            "The fund does not hold enough to commit this amount.",
            available_cents=summary.available_cents,
        )


async def release_funds(session: AsyncSession, fund_id: str, amount_cents: int) -> None:
    """Void (part of) a pending transfer."""
    if amount_cents == 0:
        return
    cash = await cash_account_id(session, fund_id)
    done = (
        await session.execute(
            update(AccountBalance)
            .where(AccountBalance.account_id == cash, AccountBalance.committed_cents >= amount_cents)
            .values(committed_cents=AccountBalance.committed_cents - amount_cents)
            .returning(AccountBalance.account_id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if done is None:
        raise Conflict("commitment_mismatch", "The fund's commitments do not cover this release.")


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
    posted_at = posted_at or utcnow()
    account_map = await fund_account_map(session, fund.id)
    accounts = {code: account_id for code, (account_id, _) in account_map.items()}
    for line in lines:
        if line.account_code not in accounts:
            raise Invalid("unknown_account", f"No account {line.account_code} in this fund.")
    seq = fund.entry_count + 1
    prev = fund.head_hash or GENESIS
    entry = JournalEntry(
        fund_id=fund.id,
        seq=seq,
        kind=kind,
        posted_at=posted_at,
        memo=memo,
        disbursement_id=disbursement_id,
        total_debits_cents=debits,
        total_credits_cents=credits,
        prev_hash=prev,
        hash="",
        idempotency_user_id=idempotency_user_id if idempotency_key else None,
        idempotency_key=idempotency_key,
        request_hash=request_hash if idempotency_key else None,
    )
    entry.hash = entry_hash(
        entry_id=entry.id,
        fund_id=fund.id,
        seq=seq,
        kind=kind,
        posted_at=posted_at,
        memo=memo,
        disbursement_id=disbursement_id,
        currency=fund.currency,
        total_debits_cents=debits,
        total_credits_cents=credits,
        lines=[(line.account_code, line.side, line.amount_cents) for line in lines],
        prev_hash=prev,
    )
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
                    # What is committed stays covered: a payment releases its commitment before it posts.
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
    fund.entry_count = seq
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


@dataclass(frozen=True)
class DepositResult:
    entry: EntryView
    created: bool


async def deposit(
    session: AsyncSession,
    fund_id: str,
    *,
    amount_cents: int,
    source: str,
    note: str = "",
    actor_user_id: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
) -> DepositResult:
    """Money in: debit cash, credit the income account of its source (grant, donation, transfer in)."""
    require_cents(amount_cents)
    if source not in {s.value for s in DepositSource}:
        raise Invalid("unknown_source", "A deposit's source is grant, donation or transfer_in.")
    if len(note) > 500:
        raise Invalid("note_too_long", "Keep the note under 500 characters.")
    try:
        fund = await lock_fund(session, fund_id)
        if idempotency_key:
            existing = await _entry_for_key(session, actor_user_id, idempotency_key)
            if existing is not None:
                return DepositResult(await _replay(session, existing, request_hash), created=False)
        entry = await post_entry(
            session,
            fund,
            kind="deposit",
            lines=[
                LineSpec(CASH_ACCOUNT, "debit", amount_cents),
                LineSpec(f"income:{source}", "credit", amount_cents),
            ],
            memo=f"{source}: {note}" if note else source,
            posted_at=now,
            idempotency_user_id=actor_user_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        await record_event(
            session,
            fund,
            action="deposit",
            actor_user_id=actor_user_id,
            detail={"entry": entry.id, "amount_cents": amount_cents, "source": source},
            at=now,
        )
        await session.commit()
    except IntegrityError:
        # A concurrent duplicate with the same key won the unique constraint: answer with its entry.
        await session.rollback()
        if not idempotency_key:
            raise
        existing = await _entry_for_key(session, actor_user_id, idempotency_key)
        if existing is None:
            raise
        return DepositResult(await _replay(session, existing, request_hash), created=False)
    return DepositResult((await entry_views(session, [entry]))[0], created=True)


async def _entry_for_key(session: AsyncSession, user_id: str, key: str) -> JournalEntry | None:
    return (
        await session.execute(
            select(JournalEntry).where(JournalEntry.idempotency_user_id == user_id, JournalEntry.idempotency_key == key)
        )
    ).scalar_one_or_none()


async def _replay(session: AsyncSession, entry: JournalEntry, request_hash: str | None) -> EntryView:
    if entry.request_hash != request_hash:
        await session.rollback()
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used with another request body.")
    view = (await entry_views(session, [entry]))[0]
    # Nothing was written: end the transaction to release the fund lock. Commit, not rollback, because a
    # rollback expires the loaded rows we are about to answer with.
    await session.commit()
    return view


async def list_entries(
    session: AsyncSession,
    fund_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[EntryView]:
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
