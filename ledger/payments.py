"""Paying an approved disbursement: the one seam both manual payments and Stripe Issuing cards go through.

`pay` books a manual payment at once: it posts the pending transfer for the actual amount (debit the
category's expense account, credit cash), voiding the rest, marks the request paid and records the payment
and an audit event, all in one transaction under the fund lock.

For `stripe_card` it asks the `CardIssuer` (ledger/stripe_cards.py, passed in by the web shell when a
Stripe key is configured) for a virtual card limited to the amount and the category, then attaches it
(ledger/cards.py): the request stays approved and keeps its pending transfer until the card's captures post
and the card is closed. Without an issuer `stripe_card` answers 409 `stripe_not_configured`. One card per
request: a retried `pay` finds the card and issues nothing (and the issuer's Stripe idempotency key is the
disbursement id, so even a retry after a lost answer makes no second card).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.cards import IssuedCard, attach_card, card_for_disbursement, merchant_categories
from ledger.disbursements import get_disbursement, items_of, lock_disbursement
from ledger.errors import Conflict, Invalid
from ledger.idempotency import end_replay, stored_for_key
from ledger.journal import LineSpec, require_cents
from ledger.models import CASH_ACCOUNT, Disbursement, DisbursementItem, Payment, Status
from ledger.pending import post_pending
from ledger.stripe_models import Card
from ledger.timeutil import utcnow

MANUAL = "manual"
STRIPE_CARD = "stripe_card"
METHODS = (MANUAL, STRIPE_CARD)


class CardIssuer(Protocol):
    async def issue_card(self, session: AsyncSession, disbursement: Disbursement, amount_cents: int) -> IssuedCard:
        """Issue a virtual card for `amount_cents`, limited to the category's merchants. May use `session`
        for its own rows (the organisation's cardholder) and leaves no transaction open."""
        ...

    async def cancel_card(self, stripe_card_id: str) -> None: ...


@dataclass(frozen=True)
class PaymentResult:
    payment: Payment | None  # None while a card is open: the card's captures become the payment
    disbursement: Disbursement
    created: bool
    card: Card | None = None
    issued: IssuedCard | None = None  # only in the answer to the request that issued the card


async def payment_of(session: AsyncSession, disbursement_id: str) -> Payment | None:
    return (
        await session.execute(select(Payment).where(Payment.disbursement_id == disbursement_id))
    ).scalar_one_or_none()


async def _payment_for_key(session: AsyncSession, user_id: str, key: str) -> Payment | None:
    return await stored_for_key(session, Payment, Payment.idempotency_user_id, user_id, key)


async def _replay(session: AsyncSession, payment: Payment, request_hash: str | None) -> PaymentResult:
    disbursement = await session.get(Disbursement, payment.disbursement_id, populate_existing=True)
    await end_replay(session, payment, request_hash)
    assert disbursement is not None  # a payment row always has its disbursement (foreign key)
    return PaymentResult(payment, disbursement, created=False)


async def pay(
    session: AsyncSession,
    disbursement_id: str,
    *,
    method: str,
    amount_cents: int | None = None,
    reference: str = "",
    actor_user_id: str,
    card_issuer: CardIssuer | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
) -> PaymentResult:
    """Pay an approved disbursement: by card (`pay_by_card`), or book a manual payment now. `amount_cents`
    None means the approved amount; more than approved is 422 `amount_exceeds_approved`; a request that is
    not approved is 409."""
    if method not in METHODS:
        raise Invalid("unknown_method", "Pay with manual or stripe_card.")
    if method == STRIPE_CARD:
        if card_issuer is None:
            raise Conflict("stripe_not_configured", "Card payments are not set up; record a manual payment.")
        return await pay_by_card(
            session, disbursement_id, amount_cents=amount_cents, actor_user_id=actor_user_id, issuer=card_issuer
        )
    if amount_cents is not None:
        require_cents(amount_cents)
    if len(reference) > 200:
        raise Invalid("too_long", "Keep the reference under 200 characters.")
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        if idempotency_key:
            found = await _payment_for_key(session, actor_user_id, idempotency_key)
            if found is not None:
                return await _replay(session, found, request_hash)
        if disbursement.status != Status.APPROVED:
            raise Conflict("invalid_state", f"This request is {disbursement.status}.", state=disbursement.status)
        approved = disbursement.committed_cents
        paid = approved if amount_cents is None else amount_cents
        if paid > approved:
            raise Invalid(
                "amount_exceeds_approved",
                "The payment is more than was approved.",
                approved_cents=approved,
            )
        items = (await items_of(session, [disbursement.id]))[disbursement.id]
        entry = await post_pending(
            session,
            fund,
            approved,
            kind="payment",
            lines=[*expense_lines(disbursement, items, paid), LineSpec(CASH_ACCOUNT, "credit", paid)],
            memo=f"{disbursement.category} {disbursement.case_code} ({method}{': ' + reference if reference else ''})",
            posted_at=now,
            disbursement_id=disbursement.id,
        )
        payment = Payment(
            disbursement_id=disbursement.id,
            method=method,
            amount_cents=paid,
            reference=reference,
            entry_id=entry.id,
            actor_user_id=actor_user_id,
            created_at=now,
            idempotency_user_id=actor_user_id if idempotency_key else None,
            idempotency_key=idempotency_key,
            request_hash=request_hash if idempotency_key else None,
        )
        session.add(payment)
        disbursement.status = Status.PAID
        disbursement.paid_cents = paid
        disbursement.committed_cents = 0
        disbursement.paid_at = now
        session.add(disbursement)
        # No flush of its own: the audit event's flush writes the payment, the request and the fund's two
        # heads (one UPDATE of the fund row) together; a duplicate payment still fails inside this `try`.
        detail = {"amount_cents": paid, "released_cents": approved - paid, "method": method, "entry": entry.id}
        await record_event(session, fund, "pay", actor_user_id, disbursement.id, detail, now)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        found = await _payment_for_key(session, actor_user_id, idempotency_key) if idempotency_key else None
        if found is None:
            raise Conflict("invalid_state", "This request was paid already.") from None
        return await _replay(session, found, request_hash)
    except Exception:
        await session.rollback()
        raise
    return PaymentResult(payment, disbursement, created=True)


def expense_lines(disbursement: Disbursement, items: list[DisbursementItem], paid: int) -> list[LineSpec]:
    """One debit per category of the request's items, together `paid`: each category's share of what was
    approved, in whole cents (the largest remainders take the cents left over), so the entry balances."""
    by_category: dict[str, int] = {}
    for item in items or []:
        by_category[item.category] = by_category.get(item.category, 0) + item.amount_cents
    if not by_category:
        by_category = {disbursement.category: disbursement.amount_cents}
    whole = sum(by_category.values())
    shares = {c: cents * paid // whole for c, cents in by_category.items()}
    left = paid - sum(shares.values())
    for c in sorted(by_category, key=lambda c: (-(by_category[c] * paid % whole), list(by_category).index(c)))[:left]:
        shares[c] += 1
    return [LineSpec(f"expenses:{c}", "debit", cents) for c, cents in shares.items() if cents > 0]


async def pay_by_card(
    session: AsyncSession,
    disbursement_id: str,
    *,
    amount_cents: int | None,
    actor_user_id: str,
    issuer: CardIssuer,
) -> PaymentResult:
    disbursement = await get_disbursement(session, disbursement_id)
    existing = await card_for_disbursement(session, disbursement_id)
    if existing is not None:
        await session.commit()  # nothing written; keep the loaded rows
        return PaymentResult(None, disbursement, created=False, card=existing)
    if disbursement.status != Status.APPROVED:
        raise Conflict("invalid_state", f"This request is {disbursement.status}.", state=disbursement.status)
    limit = disbursement.committed_cents if amount_cents is None else require_cents(amount_cents)
    if limit > disbursement.committed_cents:
        raise Invalid(
            "amount_exceeds_approved",
            "The payment is more than was approved.",
            approved_cents=disbursement.committed_cents,
        )
    merchant_categories(disbursement.category)  # `other` is refused before anything reaches Stripe
    kinds = {i.category for i in (await items_of(session, [disbursement.id]))[disbursement.id]}
    if len(kinds) > 1:
        # A card is limited to one category's merchants, and its captures post to that category's account.
        raise Invalid(
            "no_card_for_several_categories",
            "A card pays for one kind of expense; this request has several: record a manual payment.",
        )
    issued = await issuer.issue_card(session, disbursement, limit)
    await session.rollback()
    try:
        card = await attach_card(
            session,
            disbursement_id,
            stripe_card_id=issued.stripe_card_id,
            stripe_cardholder_id=issued.stripe_cardholder_id,
            last4=issued.last4,
            limit_cents=limit,
            actor_user_id=actor_user_id,
        )
    except Conflict as exc:
        if exc.code == "card_exists":  # a concurrent pay attached the same card (same idempotency key)
            winner = await card_for_disbursement(session, disbursement_id)
            current = await get_disbursement(session, disbursement_id)
            await session.commit()
            return PaymentResult(None, current, created=False, card=winner)
        # The request was cancelled or rejected while Stripe made the card: the card must not stay usable.
        await issuer.cancel_card(issued.stripe_card_id)
        raise
    current = await session.get(Disbursement, disbursement_id, populate_existing=True)
    await session.commit()
    assert current is not None
    return PaymentResult(None, current, created=True, card=card, issued=issued)
