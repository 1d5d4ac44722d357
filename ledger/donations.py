"""Donations into a fund through Stripe Checkout.

`start_donation` stores a pending donation, then asks Stripe for a Checkout session (idempotency key: the
donation's id) and returns the page to send the donor to. `post_donation` runs when
`checkout.session.completed` arrives: it posts a deposit (debit cash, credit income:donation) for the
amount Stripe collected, once per session id, under the fund lock.
"""

from __future__ import annotations

from datetime import datetime

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.errors import Invalid
from ledger.funds import get_fund, lock_fund
from ledger.journal import LineSpec, post_entry, require_cents
from ledger.models import CASH_ACCOUNT
from ledger.stripe_cards import stripe_failure
from ledger.stripe_models import Donation
from ledger.timeutil import utcnow

MIN_DONATION_CENTS = 100
MAX_DONATION_CENTS = 10_000_000


async def start_donation(
    session: AsyncSession,
    fund_id: str,
    amount_cents: int,
    *,
    client: stripe.StripeClient,
    success_url: str,
    cancel_url: str,
) -> tuple[Donation, str]:
    require_cents(amount_cents)
    if not MIN_DONATION_CENTS <= amount_cents <= MAX_DONATION_CENTS:
        raise Invalid(
            "invalid_amount",
            "A donation is between 1.00 and 100,000.00.",
            min_cents=MIN_DONATION_CENTS,
            max_cents=MAX_DONATION_CENTS,
        )
    fund = await get_fund(session, fund_id)
    donation = Donation(fund_id=fund.id, amount_cents=amount_cents, currency=fund.currency)
    session.add(donation)
    await session.commit()
    try:
        checkout = await stripe_checkout(client, donation, fund.name, success_url, cancel_url)
    except stripe.StripeError as exc:
        raise stripe_failure(exc) from exc
    donation.checkout_session_id = checkout.id
    session.add(donation)
    await session.commit()
    return donation, str(checkout.url)


async def stripe_checkout(
    client: stripe.StripeClient, donation: Donation, fund_name: str, success_url: str, cancel_url: str
) -> stripe.checkout.Session:
    return await client.v1.checkout.sessions.create_async(
        params={
            "mode": "payment",
            "submit_type": "donate",
            "client_reference_id": donation.id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": donation.currency.lower(),
                        "unit_amount": donation.amount_cents,
                        "product_data": {"name": f"Donation: {fund_name}"[:250]},
                    },
                }
            ],
            "metadata": {"fund_id": donation.fund_id, "donation_id": donation.id},
            "payment_intent_data": {"metadata": {"fund_id": donation.fund_id, "donation_id": donation.id}},
        },
        options={"idempotency_key": f"refuge-donation-{donation.id}"},
    )


async def post_donation(
    session: AsyncSession,
    *,
    checkout_session_id: str,
    fund_id: str,
    donation_id: str | None,
    amount_cents: int,
    currency: str,
    payment_intent_id: str | None,
    paid: bool,
    now: datetime | None = None,
) -> Donation | None:
    """Post the deposit of a completed Checkout session (the caller commits). Unpaid sessions (delayed
    payment methods) post nothing until `checkout.session.async_payment_succeeded`."""
    if not paid:
        return None
    now = now or utcnow()
    donation = (
        await session.execute(select(Donation).where(Donation.checkout_session_id == checkout_session_id))
    ).scalar_one_or_none()
    if donation is None and donation_id:
        donation = await session.get(Donation, donation_id)
    if donation is None:
        if not fund_id:
            raise Invalid("unknown_fund", "The Checkout session names no fund.")
        donation = Donation(fund_id=fund_id, amount_cents=amount_cents, currency=currency.upper())
    fund = await lock_fund(session, donation.fund_id)
    if donation.entry_id is not None:
        return donation
    if currency.upper() != fund.currency:
        raise Invalid("wrong_currency", f"This fund takes {fund.currency}.")
    require_cents(amount_cents)
    # What Stripe collected is what came in, even if it differs from what the donor first typed.
    entry = await post_entry(
        session,
        fund,
        kind="deposit",
        lines=[LineSpec(CASH_ACCOUNT, "debit", amount_cents), LineSpec("income:donation", "credit", amount_cents)],
        memo=f"donation: Stripe Checkout {checkout_session_id}",
        posted_at=now,
    )
    donation.checkout_session_id = checkout_session_id
    donation.payment_intent_id = payment_intent_id
    donation.amount_cents = amount_cents
    donation.status = "paid"
    donation.entry_id = entry.id
    donation.paid_at = now
    session.add(donation)
    await session.flush()
    detail = {"entry": entry.id, "amount_cents": amount_cents, "source": "donation", "checkout": checkout_session_id}
    await record_event(session, fund, action="deposit", actor_user_id=None, detail=detail, at=now)
    return donation


async def expire_donation(session: AsyncSession, checkout_session_id: str) -> bool:
    donation = (
        await session.execute(select(Donation).where(Donation.checkout_session_id == checkout_session_id))
    ).scalar_one_or_none()
    if donation is None or donation.status != "pending":
        return False
    donation.status = "expired"
    session.add(donation)
    await session.flush()
    return True


async def donations_of(session: AsyncSession, fund_id: str) -> list[Donation]:
    return list((await session.execute(select(Donation).where(Donation.fund_id == fund_id))).scalars().all())
