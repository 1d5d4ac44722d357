"""Funds and their accounts: creating a fund, the fund lock every write takes first, and the cash summary.

Every write takes the fund row first (`lock_fund`), then touches balances; so appends to a fund's chains
are serialised (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE already holds the write lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.errors import Conflict, Invalid, NotFound
from ledger.models import (
    CASH_ACCOUNT,
    CATEGORIES,
    EXCEPTIONS_ACCOUNT,
    Account,
    AccountBalance,
    AccountKind,
    DepositSource,
    Fund,
    RuleSetVersion,
)
from ledger.rules import DEFAULT_RULES, rules_to_document
from ledger.timeutil import utcnow

CURRENCIES = ("CAD", "USD", "EUR")


@dataclass(frozen=True)
class FundSummary:
    """The fund's cash: what it holds, what is pending (promised to approved requests) and what is left."""

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
        (EXCEPTIONS_ACCOUNT, AccountKind.EXPENSE),
    ]


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
            fund_id=fund.id,
            version=1,
            document=rules_to_document(DEFAULT_RULES),
            created_at=now or utcnow(),
            approved_at=now or utcnow(),  # DESIGN.md's defaults are in force from the start
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


async def cash_account_id(session: AsyncSession, fund_id: str) -> str:
    return (await fund_account_map(session, fund_id))[CASH_ACCOUNT][0]
