"""Spending per category and per month, read from the journal's expense lines (what was actually paid)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.models import CATEGORIES, Account, AccountKind, JournalEntry, JournalLine


@dataclass
class MonthSpending:
    month: str  # YYYY-MM
    by_category: dict[str, int] = field(default_factory=dict)

    @property
    def total_cents(self) -> int:
        return sum(self.by_category.values())


@dataclass(frozen=True)
class SpendingReport:
    months: list[MonthSpending]
    totals_by_category: dict[str, int]

    @property
    def total_cents(self) -> int:
        return sum(self.totals_by_category.values())

    @property
    def month_max_cents(self) -> int:
        return max((m.total_cents for m in self.months), default=0)


def _month(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m")


async def spending_report(
    session: AsyncSession, fund_id: str, *, start: datetime | None = None, end: datetime | None = None
) -> SpendingReport:
    query = (
        select(JournalEntry.posted_at, Account.code, JournalLine.side, JournalLine.amount_cents)
        .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
        .join(Account, Account.id == JournalLine.account_id)
        .where(JournalEntry.fund_id == fund_id, Account.kind == AccountKind.EXPENSE)
    )
    if start is not None:
        query = query.where(JournalEntry.posted_at >= start)
    if end is not None:
        query = query.where(JournalEntry.posted_at < end)
    months: dict[str, MonthSpending] = {}
    totals = dict.fromkeys(CATEGORIES, 0)
    for posted_at, code, side, amount in (await session.execute(query)).all():
        category = code.removeprefix("expenses:")
        signed = amount if side == "debit" else -amount
        month = months.setdefault(_month(posted_at), MonthSpending(_month(posted_at)))
        month.by_category[category] = month.by_category.get(category, 0) + signed
        totals[category] = totals.get(category, 0) + signed
    return SpendingReport(sorted(months.values(), key=lambda m: m.month), totals)
