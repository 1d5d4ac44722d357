"""The real-time answer to a card's authorization requests, and their end.

Authorizations post nothing: the commitment already covers them. The answer approves only while the amount
fits `limit - captured - held by pending approved authorizations`, with the card row locked so two
concurrent authorizations cannot both take the last dollars. It takes only the card's row lock, not the
fund's, because it must answer within Stripe's two seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ledger.cards import MERCHANT_CATEGORIES, card_by_stripe_id, held_cents
from ledger.models import Disbursement, Status
from ledger.stripe_models import Card, CardAuthorization, CardStatus
from ledger.timeutil import utcnow


@dataclass(frozen=True)
class AuthorizationDecision:
    """Stripe's question answered: approve or decline this spending, and why (the reason is stored)."""

    approved: bool
    reason: str


async def _decline_reason(
    session: AsyncSession, card: Card | None, amount_cents: int, currency: str, merchant_category: str, now: datetime
) -> str:
    if card is None:
        return "unknown_card"
    disbursement = await session.get(Disbursement, card.disbursement_id, populate_existing=True)
    remaining = card.limit_cents - card.captured_cents - await held_cents(session, card.id)
    if card.status != CardStatus.OPEN:
        return "card_closed"
    if disbursement is None or disbursement.status != Status.APPROVED:
        return "disbursement_not_approved"
    if card.expires_at <= now:
        return "card_expired"
    if currency.upper() != card.currency.upper():
        return "wrong_currency"
    if merchant_category not in MERCHANT_CATEGORIES.get(card.category, ()):
        return "merchant_category_not_allowed"
    if amount_cents <= 0 or amount_cents > remaining:
        return "insufficient_remaining"
    return "approved"


async def decide_authorization(
    session: AsyncSession,
    *,
    authorization_id: str,
    stripe_card_id: str,
    amount_cents: int,
    currency: str,
    merchant_category: str,
    now: datetime | None = None,
) -> AuthorizationDecision:
    """Answer an authorization request and record the answer (the caller commits)."""
    now = now or utcnow()
    known = await session.get(CardAuthorization, authorization_id)
    if known is not None:  # Stripe asked about this authorization before: the same answer
        return AuthorizationDecision(known.approved, known.reason)
    card = await card_by_stripe_id(session, stripe_card_id, lock=True)
    reason = await _decline_reason(session, card, amount_cents, currency, merchant_category, now)
    approved = reason == "approved"
    session.add(
        CardAuthorization(
            id=authorization_id,
            card_id=card.id if card else None,
            stripe_card_id=stripe_card_id,
            amount_cents=amount_cents,
            currency=currency.upper(),
            merchant_category=merchant_category,
            approved=approved,
            reason=reason,
            held_cents=amount_cents if approved else 0,
            status="pending" if approved else "declined",
            created_at=now,
        )
    )
    await session.flush()
    return AuthorizationDecision(approved, reason)


async def authorization_ended(session: AsyncSession, authorization_id: str, status: str) -> bool:
    """Stripe closed or reversed an authorization: it holds nothing more against the card."""
    found = await session.get(CardAuthorization, authorization_id, populate_existing=True)
    if found is None or found.status == "declined" or status == "pending":
        return False
    found.status = status
    found.held_cents = 0
    session.add(found)
    await session.flush()
    return True
