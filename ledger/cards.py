"""Paying a disbursement with a virtual card: the ledger side (no Stripe calls here; see ledger/stripe_cards.py).

Postings, all under the fund lock and in double entry:
- issuing the card posts nothing: the disbursement stays `approved` with its commitment (the pending
  transfer), now with a card attached; a card limited below the approved amount releases the difference;
- a capture of X posts debit `expenses:<category>` / credit `assets:cash` X and releases X of the commitment
  (never more than is still committed);
- a refund of Y posts the reverse entry; while the card is open it re-commits Y, because Stripe's all-time
  spending limit gives the card that room back;
- closing the card (by hand, when the captures reach the limit, at expiry, or when Stripe cancels it)
  releases what is still committed and marks the disbursement `paid` with the captured total.

Authorizations post nothing: the commitment already covers them. The real-time answer approves only while
the amount fits `limit - captured - held by pending approved authorizations`, with the card row locked so
two concurrent authorizations cannot both take the last dollars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.disbursements import lock_disbursement
from ledger.errors import Conflict, Invalid, NotFound
from ledger.journal import CASH_ACCOUNT, LineSpec, commit_funds, post_entry, release_funds
from ledger.models import Category, Disbursement, Fund, JournalEntry, Payment, Status
from ledger.stripe_models import Card, CardAuthorization, CardStatus, CardTransaction
from ledger.timeutil import utcnow

# Stripe's own merchant category names (the SDK's `allowed_categories` literals) per disbursement category.
# `other` has none: it is paid manually.
MERCHANT_CATEGORIES: dict[str, tuple[str, ...]] = {
    Category.HOTEL: ("hotels_motels_and_resorts",),
    Category.TRAVEL_LOCAL: (
        "bus_lines",
        "commuter_transport_and_ferries",
        "passenger_railways",
        "taxicabs_limousines",
    ),
    Category.TRAVEL_INTERPROVINCIAL: (
        "airlines_air_carriers",
        "bus_lines",
        "commuter_transport_and_ferries",
        "passenger_railways",
        "taxicabs_limousines",
    ),
    Category.TRAVEL_INTERNATIONAL: (
        "airlines_air_carriers",
        "bus_lines",
        "commuter_transport_and_ferries",
        "passenger_railways",
        "taxicabs_limousines",
    ),
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


async def card_by_stripe_id(session: AsyncSession, stripe_card_id: str, *, lock: bool = False) -> Card | None:
    query = select(Card).where(Card.stripe_card_id == stripe_card_id).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def held_cents(session: AsyncSession, card_id: str) -> int:
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
    approved amount releases the difference. 409 `card_exists` if a card is already attached."""
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
        await release_funds(session, disbursement.fund_id, released)
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
        await record_event(
            session,
            fund,  # type: ignore[arg-type]
            action="card_issued",
            actor_user_id=actor_user_id,
            disbursement_id=disbursement.id,
            detail={"card": stripe_card_id, "last4": last4, "limit_cents": limit_cents, "released_cents": released},
            at=now,
        )
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return card


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str


async def decide_authorization(
    session: AsyncSession,
    *,
    authorization_id: str,
    stripe_card_id: str,
    amount_cents: int,
    currency: str,
    merchant_category: str,
    now: datetime | None = None,
) -> Decision:
    """Answer an authorization request and record the answer (the caller commits). Takes only the card's
    row lock, not the fund's: it posts nothing, and it must answer within Stripe's two seconds."""
    now = now or utcnow()
    known = await session.get(CardAuthorization, authorization_id)
    if known is not None:  # Stripe asked about this authorization before: the same answer
        return Decision(known.approved, known.reason)
    card = await card_by_stripe_id(session, stripe_card_id, lock=True)
    reason = "approved"
    if card is None:
        reason = "unknown_card"
    else:
        disbursement = await session.get(Disbursement, card.disbursement_id, populate_existing=True)
        remaining = card.limit_cents - card.captured_cents - await held_cents(session, card.id)
        if card.status != CardStatus.OPEN:
            reason = "card_closed"
        elif disbursement is None or disbursement.status != Status.APPROVED:
            reason = "disbursement_not_approved"
        elif card.expires_at <= now:
            reason = "card_expired"
        elif currency.upper() != card.currency.upper():
            reason = "wrong_currency"
        elif merchant_category not in MERCHANT_CATEGORIES.get(card.category, ()):
            reason = "merchant_category_not_allowed"
        elif amount_cents <= 0 or amount_cents > remaining:
            reason = "insufficient_remaining"
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
    return Decision(approved, reason)


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


@dataclass(frozen=True)
class TransactionResult:
    transaction: CardTransaction | None
    card: Card | None
    closed_now: bool  # the captures reached the limit: cancel the card at Stripe after commit


async def _last_card_entry(session: AsyncSession, card_id: str) -> str | None:
    return (
        await session.execute(
            select(CardTransaction.entry_id)
            .join(JournalEntry, JournalEntry.id == CardTransaction.entry_id)
            .where(CardTransaction.card_id == card_id)
            .order_by(JournalEntry.seq.desc())  # type: ignore[attr-defined]
            .limit(1)
        )
    ).scalar_one_or_none()


async def _sync_payment(session: AsyncSession, disbursement: Disbursement, card: Card, now: datetime) -> None:
    """The payment row of a closed card carries the captured total (a table CHECK keeps it above zero)."""
    payment = (
        await session.execute(select(Payment).where(Payment.disbursement_id == disbursement.id))
    ).scalar_one_or_none()
    if card.captured_cents <= 0:
        return
    entry_id = await _last_card_entry(session, card.id)
    if entry_id is None:
        return
    if payment is None:
        payment = Payment(
            disbursement_id=disbursement.id,
            method="stripe_card",
            amount_cents=card.captured_cents,
            reference=f"card {card.last4}",
            external_id=card.stripe_card_id,
            entry_id=entry_id,
            actor_user_id=card.issued_by_user_id,
            created_at=now,
        )
    else:
        payment.amount_cents = card.captured_cents
        payment.entry_id = entry_id
    session.add(payment)
    await session.flush()


async def _close_locked(
    session: AsyncSession,
    fund: Fund,
    disbursement: Disbursement,
    card: Card,
    reason: str,
    actor: str | None,
    now: datetime,
) -> int:
    released = disbursement.committed_cents
    await release_funds(session, disbursement.fund_id, released)
    disbursement.committed_cents = 0
    disbursement.status = Status.PAID
    disbursement.paid_cents = max(card.captured_cents, 0)
    disbursement.paid_at = now
    card.status = CardStatus.CLOSED
    card.closed_reason = reason
    card.closed_at = now
    session.add_all([disbursement, card])
    await session.flush()
    await _sync_payment(session, disbursement, card, now)
    await record_event(
        session,
        fund,
        action="card_closed",
        actor_user_id=actor,
        disbursement_id=disbursement.id,
        detail={
            "card": card.stripe_card_id,
            "reason": reason,
            "paid_cents": disbursement.paid_cents,
            "released_cents": released,
        },
        at=now,
    )
    return released


async def _lock_card(session: AsyncSession, card: Card) -> tuple[Fund, Disbursement, Card]:
    """Fund, then disbursement, then card: the ledger's lock order."""
    disbursement, fund = await lock_disbursement(session, card.disbursement_id)
    fresh = (
        await session.execute(
            select(Card).where(Card.id == card.id).with_for_update().execution_options(populate_existing=True)
        )
    ).scalar_one()
    return fund, disbursement, fresh  # type: ignore[return-value]


async def apply_transaction(
    session: AsyncSession,
    *,
    transaction_id: str,
    stripe_card_id: str,
    kind: str,
    stripe_amount_cents: int,
    currency: str,
    authorization_id: str | None,
    balance_transaction_id: str | None,
    created_at: datetime,
    now: datetime | None = None,
) -> TransactionResult:
    """Post one Stripe issuing transaction (the caller commits). `stripe_amount_cents` is signed as
    Stripe signs it: a capture is negative, a refund positive. Unknown cards post nothing."""
    now = now or utcnow()
    if kind not in ("capture", "refund"):
        return TransactionResult(None, None, False)
    found = await card_by_stripe_id(session, stripe_card_id)
    if found is None:
        return TransactionResult(None, None, False)
    fund, disbursement, card = await _lock_card(session, found)
    if await session.get(CardTransaction, transaction_id) is not None:
        return TransactionResult(None, card, False)
    if currency.upper() != card.currency.upper():
        raise Invalid("wrong_currency", f"This card pays in {card.currency}.")
    amount = abs(stripe_amount_cents)
    if amount == 0:
        return TransactionResult(None, card, False)
    expense = f"expenses:{card.category}"
    open_card = card.status == CardStatus.OPEN
    if kind == "capture":
        release = min(amount, disbursement.committed_cents) if open_card else 0
        # Release first: the balance CHECK (balance >= committed) holds after every statement.
        await release_funds(session, fund.id, release)
        disbursement.committed_cents -= release
        lines = [LineSpec(expense, "debit", amount), LineSpec(CASH_ACCOUNT, "credit", amount)]
        card.captured_cents += amount
        disbursement.paid_cents += amount
    else:
        lines = [LineSpec(CASH_ACCOUNT, "debit", amount), LineSpec(expense, "credit", amount)]
        card.captured_cents -= amount
        disbursement.paid_cents = max(disbursement.paid_cents - amount, 0)
    entry = await post_entry(
        session,
        fund,
        kind=f"card_{kind}",
        lines=lines,
        memo=f"{disbursement.category} {disbursement.case_code} (card {card.last4} {kind} {transaction_id})",
        posted_at=now,
        disbursement_id=disbursement.id,
    )
    if kind == "refund" and open_card:
        # The card may spend the refunded amount again (Stripe's all_time limit counts refunds back).
        room = max(card.limit_cents - max(card.captured_cents, 0), 0) - disbursement.committed_cents
        if room > 0:
            await commit_funds(session, fund.id, room)
            disbursement.committed_cents += room
    txn = CardTransaction(
        id=transaction_id,
        card_id=card.id,
        fund_id=fund.id,
        disbursement_id=disbursement.id,
        kind=kind,
        amount_cents=amount,
        currency=currency.upper(),
        authorization_id=authorization_id,
        balance_transaction_id=balance_transaction_id,
        entry_id=entry.id,
        created_at=created_at,
    )
    session.add_all([txn, card, disbursement])
    await session.flush()
    if kind == "capture" and authorization_id:
        auth = await session.get(CardAuthorization, authorization_id, populate_existing=True)
        if auth is not None and auth.status == "pending":
            auth.held_cents = max(auth.held_cents - amount, 0)
            session.add(auth)
    await record_event(
        session,
        fund,
        action=f"card_{kind}",
        actor_user_id=None,
        disbursement_id=disbursement.id,
        detail={"card": card.stripe_card_id, "transaction": transaction_id, "amount_cents": amount, "entry": entry.id},
        at=now,
    )
    closed_now = False
    if open_card and card.captured_cents >= card.limit_cents:
        await _close_locked(session, fund, disbursement, card, "spent", None, now)
        closed_now = True
    elif not open_card:
        disbursement.paid_cents = max(card.captured_cents, 0)
        session.add(disbursement)
        await _sync_payment(session, disbursement, card, now)
    await session.flush()
    return TransactionResult(txn, card, closed_now)


async def close_card_in_transaction(
    session: AsyncSession, card: Card, *, reason: str, actor_user_id: str | None = None, now: datetime | None = None
) -> tuple[Card, int]:
    """Close `card` if it is open, releasing what is still committed; the caller commits."""
    fund, disbursement, card = await _lock_card(session, card)
    released = 0
    if card.status == CardStatus.OPEN:
        released = await _close_locked(session, fund, disbursement, card, reason, actor_user_id, now or utcnow())
    return card, released


async def close_card(
    session: AsyncSession,
    disbursement_id: str,
    *,
    reason: str,
    actor_user_id: str | None,
    now: datetime | None = None,
) -> tuple[Card, int]:
    """Close the card of a disbursement and release what is still committed; commit. Closing twice is
    harmless (the second returns the closed card and 0 released)."""
    try:
        card = await card_for_disbursement(session, disbursement_id)
        if card is None:
            raise NotFound("no_card", "No card was issued for this request.")
        card, released = await close_card_in_transaction(
            session, card, reason=reason, actor_user_id=actor_user_id, now=now
        )
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return card, released


async def expired_cards(session: AsyncSession, now: datetime | None = None) -> list[Card]:
    now = now or utcnow()
    rows = await session.execute(select(Card).where(Card.status == CardStatus.OPEN, Card.expires_at <= now))
    return list(rows.scalars().all())


async def cards_of_fund(session: AsyncSession, fund_id: str) -> list[Card]:
    return list((await session.execute(select(Card).where(Card.fund_id == fund_id))).scalars().all())
