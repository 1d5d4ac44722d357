"""The double-entry journal: balanced entries appended to a fund's hash chain, moving the balances.

Each entry's lines are checked (debits equal credits, positive cents, known accounts), written together and
applied to the account balances by one conditional UPDATE in the caller's transaction, under the fund lock
(`ledger.funds`). Nothing just written is read back: the lines are the ones checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, case, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.chain import GENESIS, entry_hash
from ledger.errors import Conflict, Invalid
from ledger.funds import fund_account_map
from ledger.models import (
    CASH_ACCOUNT,
    NORMAL_SIDE,
    Account,
    AccountBalance,
    AccountKind,
    Fund,
    JournalEntry,
    JournalLine,
)
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


@dataclass(frozen=True)
class EntrySpec:
    """One entry of a batch (`post_entries`)."""

    kind: str
    lines: Sequence[LineSpec]
    memo: str = ""
    posted_at: datetime | None = None
    disbursement_id: str | None = None


def _known_accounts(account_map: dict[str, tuple[str, AccountKind]], lines: Sequence[LineSpec]) -> None:
    for line in lines:
        if line.account_code not in account_map:
            raise Invalid("unknown_account", f"No account {line.account_code} in this fund.")


def _add_deltas(
    deltas: dict[str, int], account_map: dict[str, tuple[str, AccountKind]], lines: Sequence[LineSpec]
) -> None:
    for line in lines:
        account_id, kind = account_map[line.account_code]
        delta = line.amount_cents if line.side == NORMAL_SIDE[kind] else -line.amount_cents
        deltas[account_id] = deltas.get(account_id, 0) + delta


async def _move_balances(
    session: AsyncSession,
    account_map: dict[str, tuple[str, AccountKind]],
    deltas: dict[str, int],
    release: tuple[str, int] | None,
) -> None:
    """Every balance an entry (or a batch) moves, in one conditional UPDATE: an account may not go below what
    it owes (`committed_cents`). `release` voids (account id, cents) of a pending transfer in the same
    statement, so the row's CHECK (balance >= committed) holds after it, as it did after the void and then the
    posting."""
    ids = sorted(deltas)
    released = 0
    if release is not None and release[1]:
        released = release[1]
        ids = sorted({*ids, release[0]})
    moved = case(
        {account_id: literal(delta, BigInteger) for account_id, delta in deltas.items()},
        value=AccountBalance.account_id,
        else_=literal(0, BigInteger),
    )
    freed: Any = (
        case({release[0]: literal(released, BigInteger)}, value=AccountBalance.account_id, else_=literal(0, BigInteger))
        if release is not None and released
        else literal(0, BigInteger)
    )
    done = set(
        (
            await session.execute(
                update(AccountBalance)
                .where(
                    AccountBalance.account_id.in_(ids),  # type: ignore[attr-defined]
                    AccountBalance.committed_cents >= freed,
                    # What is pending stays covered.
                    AccountBalance.balance_cents + moved >= AccountBalance.committed_cents - freed,
                )
                .values(
                    balance_cents=AccountBalance.balance_cents + moved,
                    committed_cents=AccountBalance.committed_cents - freed,
                )
                .returning(AccountBalance.account_id)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )
    if len(done) == len(ids):
        return
    # Refused: say why (read only on this path; the transaction is rolled back by the caller).
    codes = {account_id: code for code, (account_id, _) in account_map.items()}
    rows = await session.execute(
        select(AccountBalance.account_id, AccountBalance.balance_cents, AccountBalance.committed_cents).where(
            AccountBalance.account_id.in_([i for i in ids if i not in done])  # type: ignore[attr-defined]
        )
    )
    for account_id, _balance, committed in rows.all():
        if release is not None and account_id == release[0] and committed < released:
            raise Conflict("commitment_mismatch", "The fund's commitments do not cover this release.")
    missing = next(i for i in ids if i not in done)
    raise Conflict("insufficient_funds", f"Account {codes.get(missing, missing)} cannot go below what it owes.")


def _new_entry(
    fund: Fund,
    seq: int,
    prev_hash: str,
    *,
    kind: str,
    lines: Sequence[LineSpec],
    memo: str,
    posted_at: datetime | None,
    disbursement_id: str | None,
    idempotency_user_id: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> JournalEntry:
    debits, credits = _check_lines(lines)
    entry = JournalEntry(
        fund_id=fund.id,
        seq=seq,
        kind=kind,
        posted_at=posted_at or utcnow(),
        memo=memo,
        disbursement_id=disbursement_id,
        total_debits_cents=debits,
        total_credits_cents=credits,
        prev_hash=prev_hash or GENESIS,
        hash="",
        idempotency_user_id=idempotency_user_id if idempotency_key else None,
        idempotency_key=idempotency_key,
        request_hash=request_hash if idempotency_key else None,
    )
    entry.hash = entry_hash(entry, fund.currency, [(line.account_code, line.side, line.amount_cents) for line in lines])
    return entry


def _line_rows(
    entry: JournalEntry, account_map: dict[str, tuple[str, AccountKind]], lines: Sequence[LineSpec]
) -> list[dict[str, Any]]:
    return [
        {
            "entry_id": entry.id,
            "position": position,
            "account_id": account_map[line.account_code][0],
            "side": line.side,
            "amount_cents": line.amount_cents,
        }
        for position, line in enumerate(lines)
    ]


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
    release_cents: int = 0,
) -> JournalEntry:
    """Append one balanced entry to `fund`'s chain and move the balances. The caller holds `lock_fund`
    and commits; nothing is visible to anyone until then. `release_cents` of the fund's pending transfers
    are voided by the same statement that moves the balances (`ledger.pending.post_pending`).

    Three statements: the entry, its lines together, the balances together. The fund's new head is set on
    the locked row and written by the caller's next flush, with the audit event's head: one UPDATE."""
    account_map = await fund_account_map(session, fund.id)
    _known_accounts(account_map, lines)
    entry = _new_entry(
        fund,
        fund.entry_count + 1,
        fund.head_hash,
        kind=kind,
        lines=lines,
        memo=memo,
        posted_at=posted_at,
        disbursement_id=disbursement_id,
        idempotency_user_id=idempotency_user_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    await session.execute(insert(JournalEntry), [_entry_row(entry)])
    await session.execute(insert(JournalLine), _line_rows(entry, account_map, lines))
    deltas: dict[str, int] = {}
    _add_deltas(deltas, account_map, lines)
    cash = (account_map[CASH_ACCOUNT][0], release_cents) if release_cents else None
    await _move_balances(session, account_map, deltas, cash)
    fund.entry_count = entry.seq
    fund.head_hash = entry.hash
    session.add(fund)
    return entry


async def post_entries(session: AsyncSession, fund: Fund, specs: Sequence[EntrySpec]) -> list[JournalEntry]:
    """Append many balanced entries at once (imports, the benchmark): the entries in one INSERT, their lines
    in one, the balances in one UPDATE and the fund's head once. The balances are checked on the batch's net
    movement, which is all anyone else can see of it. The caller holds `lock_fund` and commits."""
    if not specs:
        return []
    account_map = await fund_account_map(session, fund.id)
    entries: list[JournalEntry] = []
    line_rows: list[dict[str, Any]] = []
    deltas: dict[str, int] = {}
    seq, prev = fund.entry_count, fund.head_hash
    for spec in specs:
        _known_accounts(account_map, spec.lines)
        seq += 1
        entry = _new_entry(
            fund,
            seq,
            prev,
            kind=spec.kind,
            lines=spec.lines,
            memo=spec.memo,
            posted_at=spec.posted_at,
            disbursement_id=spec.disbursement_id,
        )
        prev = entry.hash
        entries.append(entry)
        line_rows += _line_rows(entry, account_map, spec.lines)
        _add_deltas(deltas, account_map, spec.lines)
    await session.execute(insert(JournalEntry), [_entry_row(entry) for entry in entries])
    await session.execute(insert(JournalLine), line_rows)
    await _move_balances(session, account_map, deltas, None)
    fund.entry_count, fund.head_hash = seq, prev
    session.add(fund)
    return entries


_ENTRY_FIELDS = (
    "id",
    "fund_id",
    "seq",
    "kind",
    "posted_at",
    "memo",
    "disbursement_id",
    "total_debits_cents",
    "total_credits_cents",
    "prev_hash",
    "hash",
    "idempotency_user_id",
    "idempotency_key",
    "request_hash",
)


def _entry_row(entry: JournalEntry) -> dict[str, Any]:
    return {column: getattr(entry, column) for column in _ENTRY_FIELDS}


def posted_view(entry: JournalEntry, lines: Sequence[LineSpec]) -> EntryView:
    """The view of an entry just posted from `lines` (what `entry_views` would read back)."""
    return EntryView(entry, tuple(LineView(line.account_code, line.side, line.amount_cents) for line in lines))


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
