"""Reconciliation: every difference between a fund's journal and Stripe for a period.

Both sides are compared by Stripe's object ids, in cents of cash effect (a capture is money out, negative
as Stripe signs it; a refund and a donation are money in):
- card transactions posted to the journal (`ledger_card_transaction`) against Stripe's issuing
  transactions of the fund's cards, and each against its `issuing_transaction` balance transaction;
- donations posted to the journal (`ledger_donation`) against Stripe's `charge` balance transactions of
  their payment intents.

A difference is `missing_in_journal`, `missing_in_stripe`, `amount_mismatch` or
`missing_balance_transaction`. Stripe is read one day beyond each end of the period so that an item posted
a moment after Stripe created it is matched, not reported twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.journal import get_fund
from ledger.stripe_cards import stripe_failure
from ledger.stripe_models import Card, CardTransaction, Donation

MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Difference:
    kind: str
    object: str  # issuing_transaction | donation
    stripe_id: str | None
    entry_id: str | None
    journal_cents: int | None
    stripe_cents: int | None
    at: datetime | None
    detail: str = ""


@dataclass
class Reconciliation:
    fund_id: str
    currency: str
    start: datetime
    end: datetime
    journal_cents: int = 0  # cash effect of the Stripe-linked entries of the period
    stripe_cents: int = 0  # cash effect of the fund's Stripe objects of the period
    matched: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def difference_cents(self) -> int:
        return self.stripe_cents - self.journal_cents


def _at(ts: Any) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) else getattr(value, "id", None)


async def _stripe_list(service: Any, params: dict[str, Any]) -> list[Any]:
    try:
        page = await service.list_async(params=params)
        return [item async for item in page.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise stripe_failure(exc) from exc


async def reconcile(
    session: AsyncSession, client: stripe.StripeClient, fund_id: str, start: datetime, end: datetime
) -> Reconciliation:
    fund = await get_fund(session, fund_id)
    report = Reconciliation(fund.id, fund.currency, start, end)
    window = {"gte": int((start - MARGIN).timestamp()), "lt": int((end + MARGIN).timestamp())}

    def in_period(at: datetime) -> bool:
        return start <= at < end

    cards = {
        c.stripe_card_id: c for c in (await session.execute(select(Card).where(Card.fund_id == fund_id))).scalars()
    }
    posted = {
        t.id: t
        for t in (await session.execute(select(CardTransaction).where(CardTransaction.fund_id == fund_id))).scalars()
    }
    donations = {
        d.payment_intent_id: d
        for d in (
            await session.execute(
                select(Donation).where(Donation.fund_id == fund_id, Donation.entry_id.is_not(None))  # type: ignore[union-attr]
            )
        ).scalars()
        if d.payment_intent_id
    }
    await session.commit()  # the reads are done; no transaction stays open across Stripe calls

    issuing = await _stripe_list(client.v1.issuing.transactions, {"created": window, "limit": 100})
    balance = await _stripe_list(
        client.v1.balance_transactions, {"created": window, "limit": 100, "expand": ["data.source"]}
    )
    by_source = {_id(b.source): b for b in balance if b.type == "issuing_transaction"}
    charges = [b for b in balance if b.type == "charge"]

    # Card transactions: Stripe → journal.
    seen: set[str] = set()
    for txn in issuing:
        if _id(txn.card) not in cards:
            continue  # another fund's card, or no card of ours
        seen.add(txn.id)
        at = _at(txn.created)
        ours = posted.get(txn.id)
        journal = None if ours is None else (-ours.amount_cents if ours.kind == "capture" else ours.amount_cents)
        if in_period(at):
            report.stripe_cents += txn.amount
        if ours is None:
            if in_period(at):
                report.differences.append(
                    Difference("missing_in_journal", "issuing_transaction", txn.id, None, None, txn.amount, at)
                )
            continue
        if not in_period(ours.created_at):
            continue
        report.journal_cents += journal or 0
        if journal != txn.amount:
            report.differences.append(
                Difference("amount_mismatch", "issuing_transaction", txn.id, ours.entry_id, journal, txn.amount, at)
            )
        else:
            report.matched += 1
        bt = by_source.get(txn.id)
        if bt is None:
            report.differences.append(
                Difference(
                    "missing_balance_transaction", "issuing_transaction", txn.id, ours.entry_id, journal, None, at
                )
            )
        elif bt.amount != txn.amount:
            report.differences.append(
                Difference(
                    "amount_mismatch",
                    "issuing_transaction",
                    txn.id,
                    ours.entry_id,
                    journal,
                    bt.amount,
                    at,
                    detail=f"balance transaction {bt.id}",
                )
            )
    # Card transactions: journal → Stripe.
    for ours in posted.values():
        if ours.id in seen or not in_period(ours.created_at):
            continue
        journal = -ours.amount_cents if ours.kind == "capture" else ours.amount_cents
        report.journal_cents += journal
        report.differences.append(
            Difference(
                "missing_in_stripe", "issuing_transaction", ours.id, ours.entry_id, journal, None, ours.created_at
            )
        )

    # Donations: charges of our payment intents.
    seen_intents: set[str] = set()
    for bt in charges:
        source = bt.source
        intent = _id(getattr(source, "payment_intent", None)) if not isinstance(source, str) else None
        if intent is None and isinstance(source, str):
            try:
                intent = _id((await client.v1.charges.retrieve_async(source)).payment_intent)
            except stripe.StripeError as exc:
                raise stripe_failure(exc) from exc
        donation = donations.get(intent or "")
        metadata = getattr(source, "metadata", None) if not isinstance(source, str) else None
        # StripeObject is not a dict: no .get().
        ours_by_metadata = metadata is not None and "fund_id" in metadata and metadata["fund_id"] == fund_id
        if donation is None and not ours_by_metadata:
            continue
        at = _at(bt.created)
        if in_period(at):
            report.stripe_cents += bt.amount
        if donation is None:
            if in_period(at):
                report.differences.append(
                    Difference("missing_in_journal", "donation", intent, None, None, bt.amount, at, detail=bt.id)
                )
            continue
        seen_intents.add(intent or "")
        paid_at = donation.paid_at or at
        if not in_period(paid_at):
            continue
        report.journal_cents += donation.amount_cents
        if donation.amount_cents != bt.amount:
            report.differences.append(
                Difference(
                    "amount_mismatch",
                    "donation",
                    intent,
                    donation.entry_id,
                    donation.amount_cents,
                    bt.amount,
                    at,
                    detail=bt.id,
                )
            )
        else:
            report.matched += 1
    for intent, donation in donations.items():
        if intent in seen_intents or donation.paid_at is None or not in_period(donation.paid_at):
            continue
        report.journal_cents += donation.amount_cents
        report.differences.append(
            Difference(
                "missing_in_stripe",
                "donation",
                intent,
                donation.entry_id,
                donation.amount_cents,
                None,
                donation.paid_at,
            )
        )
    report.differences.sort(key=lambda d: (d.at or start, d.stripe_id or ""))
    return report
