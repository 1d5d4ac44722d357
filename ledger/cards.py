"""A disbursement's virtual card, as the ledger knows it: which merchants it pays, how long it lives, what
it may still spend, and attaching it to an approved request (no Stripe calls here; see
ledger/stripe_cards.py).

Issuing a card posts nothing: the disbursement stays `approved` with its commitment (the pending transfer),
now with a card attached; a card limited below the approved amount voids the difference. What the card
then does lives beside this module: the real-time answer to its authorizations in
ledger/card_authorizations.py, its captures, refunds and closing in ledger/card_postings.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.disbursements import lock_disbursement
from ledger.errors import Conflict, Invalid
from ledger.models import Category, Disbursement, Fund, Status
from ledger.pending import void_pending
from ledger.stripe_models import Card, CardAuthorization, CardStatus
from ledger.timeutil import utcnow

_TRAVEL = ("bus_lines", "commuter_transport_and_ferries", "passenger_railways", "taxicabs_limousines")

# Stripe's own merchant category names (the SDK's `allowed_categories` literals) per disbursement category.
# `other` has none: it is paid manually.
MERCHANT_CATEGORIES: dict[str, tuple[str, ...]] = {
    Category.HOTEL: ("hotels_motels_and_resorts",),
    Category.TRAVEL_LOCAL: _TRAVEL,
    Category.TRAVEL_INTERPROVINCIAL: ("airlines_air_carriers", *_TRAVEL),
    Category.TRAVEL_INTERNATIONAL: ("airlines_air_carriers", *_TRAVEL),
    Category.CALLING_CARD: ("telecommunication_services",),
    Category.BASIC_NEEDS: (
        "drug_stores_and_pharmacies",
        "family_clothing_stores",
        "grocery_stores_supermarkets",
        "mens_womens_clothing_stores",
        "shoe_stores",
    ),
}

CARD_DAYS = 14  # how long a card stays usable; a hotel card also covers its nights


def merchant_categories(category: str) -> tuple[str, ...]:
    found = MERCHANT_CATEGORIES.get(category)
    if not found:
        raise Invalid("no_card_for_category", "This category is not paid by card; record a manual payment.")
    return found


def card_expiry(disbursement: Disbursement, now: datetime) -> datetime:
    return now + timedelta(days=CARD_DAYS + (disbursement.nights or 0))


@dataclass(frozen=True)
class IssuedCard:
    """What the card issuer made. `number` and `cvc` are shown to the requester once, in the answer to
    the request that issued the card, and never stored."""

    stripe_card_id: str
    stripe_cardholder_id: str
    last4: str
    exp_month: int
    exp_year: int
    number: str | None = None
    cvc: str | None = None


@dataclass(frozen=True)
class CardState:
    card: Card
    held_cents: int

    @property
    def remaining_cents(self) -> int:
        return max(self.card.limit_cents - self.card.captured_cents - self.held_cents, 0)


async def card_for_disbursement(session: AsyncSession, disbursement_id: str) -> Card | None:
    return (await session.execute(select(Card).where(Card.disbursement_id == disbursement_id))).scalar_one_or_none()


async def cards_for_disbursements(session: AsyncSession, disbursement_ids: list[str]) -> dict[str, Card]:
    """The cards of these requests, by request id (a request has one card at most)."""
    found = await session.execute(select(Card).where(Card.disbursement_id.in_(disbursement_ids)))  # type: ignore[attr-defined]
    return {card.disbursement_id: card for card in found.scalars()}


async def card_by_stripe_id(session: AsyncSession, stripe_card_id: str, *, lock: bool = False) -> Card | None:
    query = select(Card).where(Card.stripe_card_id == stripe_card_id).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def held_cents(session: AsyncSession, card_id: str) -> int:
    """What the card's pending approved authorizations hold: not captured yet, no longer spendable."""
    held = (
        await session.execute(
            select(func.coalesce(func.sum(CardAuthorization.held_cents), 0)).where(
                CardAuthorization.card_id == card_id,
                CardAuthorization.approved.is_(True),  # type: ignore[attr-defined]
                CardAuthorization.status == "pending",
            )
        )
    ).scalar_one()
    return int(held)


async def card_state(session: AsyncSession, card: Card) -> CardState:
    return CardState(card, await held_cents(session, card.id))


async def record_card_event(
    session: AsyncSession, fund: Fund, card: Card, action: str, actor_user_id: str | None, at: datetime, **detail: Any
) -> None:
    """Every audit event of a card names the card and its request (the caller holds the fund lock)."""
    await record_event(
        session,
        fund,
        action=action,
        actor_user_id=actor_user_id,
        disbursement_id=card.disbursement_id,
        detail={"card": card.stripe_card_id, **detail},
        at=at,
    )


async def attach_card(
    session: AsyncSession,
    disbursement_id: str,
    *,
    stripe_card_id: str,
    stripe_cardholder_id: str,
    last4: str,
    limit_cents: int,
    actor_user_id: str,
    now: datetime | None = None,
) -> Card:
    """Record a card Stripe has issued for an approved disbursement; commit. A card limited below the
    approved amount voids the difference of the pending transfer. 409 `card_exists` if a card is already attached."""
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        if disbursement.status != Status.APPROVED:
            raise Conflict("invalid_state", f"This request is {disbursement.status}.", state=disbursement.status)
        if await card_for_disbursement(session, disbursement_id) is not None:
            raise Conflict("card_exists", "A card was already issued for this request.")
        if not 0 < limit_cents <= disbursement.committed_cents:
            raise Invalid(
                "amount_exceeds_approved",
                "The card is for more than was approved.",
                approved_cents=disbursement.committed_cents,
            )
        released = disbursement.committed_cents - limit_cents
        await void_pending(session, disbursement.fund_id, released)
        disbursement.committed_cents = limit_cents
        card = Card(
            disbursement_id=disbursement.id,
            fund_id=disbursement.fund_id,
            stripe_card_id=stripe_card_id,
            stripe_cardholder_id=stripe_cardholder_id,
            last4=last4,
            currency=disbursement.currency,
            category=disbursement.category,
            limit_cents=limit_cents,
            issued_by_user_id=actor_user_id,
            created_at=now,
            expires_at=card_expiry(disbursement, now),
        )
        session.add(card)
        session.add(disbursement)
        await session.flush()
        await record_card_event(
            session,
            fund,
            card,
            "card_issued",
            actor_user_id,
            now,
            last4=last4,
            limit_cents=limit_cents,
            released_cents=released,
        )
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return card


async def expired_cards(session: AsyncSession, now: datetime | None = None) -> list[Card]:
    now = now or utcnow()
    rows = await session.execute(select(Card).where(Card.status == CardStatus.OPEN, Card.expires_at <= now))
    return list(rows.scalars().all())


async def cards_of_fund(session: AsyncSession, fund_id: str) -> list[Card]:
    return list((await session.execute(select(Card).where(Card.fund_id == fund_id))).scalars().all())
