"""Reconciliation: every difference between a fund's journal and Stripe for a period.

This module reads both sides (the journal's card transactions and donations, Stripe's issuing and balance
transactions) and hands them to the pure comparison in ledger/reconcile_compare.py. Stripe is read one day
beyond each end of the period so that an item posted a moment after Stripe created it is matched, not
reported twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.cards import cards_of_fund
from ledger.funds import get_fund
from ledger.reconcile_compare import (
    BalanceTransaction,
    Charge,
    IssuingTransaction,
    Reconciliation,
    compare_card_transactions,
    compare_donations,
    list_exceptions,
    sort_differences,
)
from ledger.stripe_cards import stripe_failure
from ledger.stripe_models import CardTransaction, Donation

MARGIN = timedelta(days=1)


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


async def _charge(client: stripe.StripeClient, balance: Any) -> Charge:
    """A charge's payment intent and fund: from the expanded charge, or asked of Stripe when the balance
    transaction names the charge by id only."""
    source = balance.source
    if isinstance(source, str):
        try:
            intent = _id((await client.v1.charges.retrieve_async(source)).payment_intent)
        except stripe.StripeError as exc:
            raise stripe_failure(exc) from exc
        fund_id = None
    else:
        intent = _id(getattr(source, "payment_intent", None))
        metadata = getattr(source, "metadata", None)
        # StripeObject is not a dict: no .get().
        fund_id = metadata["fund_id"] if metadata is not None and "fund_id" in metadata else None
    return Charge(balance.id, balance.amount, _at(balance.created), intent, fund_id)


async def reconcile(
    session: AsyncSession, client: stripe.StripeClient, fund_id: str, start: datetime, end: datetime
) -> Reconciliation:
    fund = await get_fund(session, fund_id)
    report = Reconciliation(fund.id, fund.currency, start, end)
    window = {"gte": int((start - MARGIN).timestamp()), "lt": int((end + MARGIN).timestamp())}

    card_ids = {c.stripe_card_id for c in await cards_of_fund(session, fund_id)}
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
    compare_card_transactions(
        report,
        [IssuingTransaction(t.id, _id(t.card), t.amount, _at(t.created)) for t in issuing],
        {_id(b.source) or "": BalanceTransaction(b.id, b.amount) for b in balance if b.type == "issuing_transaction"},
        card_ids,
        posted,
    )
    compare_donations(report, [await _charge(client, b) for b in balance if b.type == "charge"], donations)
    list_exceptions(report, posted)
    return sort_differences(report)
