"""The shell's Stripe operations, shared by the API and the pages: who may see, issue and close a request's
card, the card as both show it, donations and reconciliation. Stripe itself is reached through
exchange/stripe/issuer.py; the money rules are the ledger's (ledger/cards.py, ledger/card_postings.py,
ledger/donations.py, ledger/reconcile.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from litestar.di import Provide
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import User
from exchange.fund.schemas import parse_bound
from exchange.fund.service import card_issuer, ledger_viewer, pay_as, visible_disbursement
from exchange.registry import CardIssuerFactory
from exchange.settings import Settings
from exchange.stripe.issuer import client_for, stripe_issuer
from ledger import card_postings, cards, disbursements, donations, funds, reconcile
from ledger.cards import IssuedCard
from ledger.errors import Conflict, Forbidden
from ledger.models import Disbursement, Fund, Status
from ledger.reconcile_compare import Reconciliation
from ledger.stripe_models import Card
from ledger.timeutil import utcnow


class CardOut(msgspec.Struct):
    id: str
    disbursement_id: str
    last4: str
    status: str
    currency: str
    limit_cents: int
    captured_cents: int
    held_cents: int
    remaining_cents: int
    valid_until: datetime
    closed_reason: str


async def card_out(db: AsyncSession, card: Card) -> CardOut:
    state = await cards.card_state(db, card)
    return CardOut(
        id=card.stripe_card_id,
        disbursement_id=card.disbursement_id,
        last4=card.last4,
        status=card.status,
        currency=card.currency,
        limit_cents=card.limit_cents,
        captured_cents=card.captured_cents,
        held_cents=state.held_cents,
        remaining_cents=state.remaining_cents if card.status == "open" else 0,
        valid_until=card.expires_at,
        closed_reason=card.closed_reason,
    )


async def card_of(db: AsyncSession, user: User, disbursement_id: str) -> CardOut | None:
    """The request's card, or None while none was issued; 404 for whoever may not see the request."""
    await visible_disbursement(db, user, disbursement_id)
    card = await cards.card_for_disbursement(db, disbursement_id)
    return None if card is None else await card_out(db, card)


@dataclass(frozen=True)
class PayableRow:
    """An approved request on the card payments page: its card if one was issued, else whether one may be."""

    d: Disbursement
    card: CardOut | None
    card_possible: bool


async def payable_by_card(db: AsyncSession, user: User) -> list[PayableRow]:
    """The approved requests this user may pay: an approver's are all of them, a worker's their own."""
    viewer = ledger_viewer(user)
    approved = await disbursements.list_disbursements(
        db, status=Status.APPROVED, requester_id=None if viewer.is_approver else user.id, limit=100
    )
    attached = await cards.cards_for_disbursements(db, [d.id for d in approved])
    return [
        PayableRow(
            d,
            await card_out(db, attached[d.id]) if d.id in attached else None,
            d.category in cards.MERCHANT_CATEGORIES,
        )
        for d in approved
    ]


@dataclass(frozen=True)
class IssuedOut:
    disbursement: Disbursement
    card: CardOut | None
    issued: IssuedCard | None  # the number and CVC, only in the answer that issued the card


async def issue_card_as(
    db: AsyncSession, user: User, disbursement_id: str, settings: Settings, factories: Sequence[CardIssuerFactory]
) -> IssuedOut:
    result = await pay_as(
        db,
        user,
        disbursement_id,
        method="stripe_card",
        amount_cents=None,
        reference="",
        issuer=card_issuer(settings, factories),
    )
    card = await card_out(db, result.card) if result.card is not None else None
    return IssuedOut(result.disbursement, card, result.issued)


async def close_card_as(db: AsyncSession, user: User, disbursement_id: str, settings: Settings) -> CardOut:
    """Approvers and the requester close a card: cancelled at Stripe first (no further spending), then
    the ledger voids what was not spent and marks the request paid."""
    viewer = ledger_viewer(user)
    found = await disbursements.visible_disbursement(db, disbursement_id, viewer)
    if not (viewer.is_approver or found.requester_id == user.id):
        raise Forbidden("forbidden", "Only an approver or the requester closes a card.")
    card = await cards.card_for_disbursement(db, disbursement_id)
    if card is None:
        raise Conflict("no_card", "No card was issued for this request.")
    stripe_card_id, is_open = card.stripe_card_id, card.status == "open"
    await db.rollback()
    if is_open:
        issuer = stripe_issuer(settings)
        if issuer is None:
            raise Conflict("stripe_not_configured", "Stripe is not set up; the card cannot be cancelled here.")
        await issuer.cancel_card(stripe_card_id)
    closed, _ = await card_postings.close_card(db, disbursement_id, reason="closed", actor_user_id=user.id)
    return await card_out(db, closed)


@dataclass(frozen=True)
class Period:
    """A report's `from`/`to` as typed (the page shows them back); dates or ISO times as in the journal API."""

    start: str | None = None
    end: str | None = None

    def bounds(self) -> tuple[datetime, datetime]:
        """[first, last) in UTC; the current month so far when left out."""
        now = utcnow()
        first = parse_bound(self.start, end=False) or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last = parse_bound(self.end, end=True) or now + timedelta(seconds=1)
        return first.astimezone(UTC), last.astimezone(UTC)


def period_query(
    start: Annotated[str | None, QueryParameter(name="from")] = None,
    end: Annotated[str | None, QueryParameter(name="to")] = None,
) -> Period:
    return Period(start, end)


# The `period: Period` of a handler, from its `from` and `to` query parameters.
PERIOD = {"period": Provide(period_query, sync_to_thread=False)}


async def reconciliation(db: AsyncSession, settings: Settings, fund_id: str, period: Period) -> Reconciliation:
    """Every difference between the fund's journal and Stripe over the period; 409 without Stripe."""
    first, last = period.bounds()
    return await reconcile.reconcile(db, client_for(settings), fund_id, first, last)


@dataclass(frozen=True)
class ReconcileChoice:
    funds: list[Fund]
    chosen: str | None
    report: Reconciliation | None  # None without Stripe or without a fund


async def reconcile_choice(
    db: AsyncSession, settings: Settings, fund_id: str | None, period: Period
) -> ReconcileChoice:
    """The auditor's page: the funds to choose from, and the chosen one's reconciliation (the first fund's
    when none is chosen)."""
    every = await funds.list_funds(db)
    chosen = fund_id or (every[0].id if every else None)
    report = None
    if chosen and settings.stripe_enabled:
        report = await reconciliation(db, settings, chosen, period)
    return ReconcileChoice(every, chosen, report)


async def donation_fund(db: AsyncSession, fund_id: str) -> Fund:
    """The fund a public donation page is for; 404 `fund_not_found`."""
    return await funds.get_fund(db, fund_id)


async def start_donation(db: AsyncSession, settings: Settings, fund_id: str, amount_cents: int) -> str:
    """A pending donation and its Stripe Checkout session; the page to send the donor to."""
    client = client_for(settings)
    base = f"{settings.base_url}/donate/{fund_id}"
    _, url = await donations.start_donation(
        db,
        fund_id,
        amount_cents,
        client=client,
        success_url=f"{base}/thanks",
        cancel_url=f"{base}?cancelled=true",
    )
    return url
