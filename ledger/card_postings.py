"""What a card's spending posts, all under the fund lock and in double entry:

- a capture of X posts debit `expenses:<category>` / credit `assets:cash` X out of the request's pending
  transfer (never more than is still pending);
- a refund of Y posts the reverse entry; while the card is open it pends Y again, because Stripe's all-time
  spending limit gives the card that room back;
- closing the card (by hand, when the captures reach the limit, at expiry, or when Stripe cancels it)
  voids what is still pending and marks the disbursement `paid` with the captured total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.cards import card_by_stripe_id, card_for_disbursement, record_card_event
from ledger.disbursements import lock_disbursement
from ledger.errors import Invalid, NotFound
from ledger.journal import LineSpec
from ledger.models import CASH_ACCOUNT, EXCEPTIONS_ACCOUNT, Disbursement, Fund, JournalEntry, Payment, Status
from ledger.payments import payment_of
from ledger.pending import pend, post_pending, void_pending
from ledger.stripe_models import Card, CardAuthorization, CardStatus, CardTransaction
from ledger.timeutil import utcnow


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
    payment = await payment_of(session, disbursement.id)
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
    await void_pending(session, disbursement.fund_id, released)
    disbursement.committed_cents = 0
    if disbursement.status in (Status.APPROVED, Status.PAID):
        # Only an approved request is paid by its card; a cancelled or rejected one stays so.
        disbursement.status = Status.PAID
        disbursement.paid_cents = max(card.captured_cents, 0)
        disbursement.paid_at = now
    card.status = CardStatus.CLOSED
    card.closed_reason = reason
    card.closed_at = now
    session.add_all([disbursement, card])
    await session.flush()
    if disbursement.status == Status.PAID:
        await _sync_payment(session, disbursement, card, now)
    await record_card_event(
        session,
        fund,
        card,
        "card_closed",
        actor,
        now,
        reason=reason,
        paid_cents=disbursement.paid_cents,
        released_cents=released,
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
    return fund, disbursement, fresh


def is_exception(disbursement: Disbursement) -> bool:
    """Money a card moves after its request ended (cancelled or rejected) is an exception, never a payment."""
    return disbursement.status in (Status.CANCELLED, Status.REJECTED)


async def _post_movement(
    session: AsyncSession,
    fund: Fund,
    disbursement: Disbursement,
    card: Card,
    *,
    kind: str,
    amount: int,
    transaction_id: str,
    now: datetime,
) -> tuple[str, bool]:
    """Post a capture or a refund of `amount` and move the pending transfer with it; the journal entry's id
    and whether it posted to the exceptions account: all of it for the card of a cancelled or rejected
    request, and what a closed card captures beyond its limit (never approved) for any other."""
    exception = is_exception(disbursement)
    expense = EXCEPTIONS_ACCOUNT if exception else f"expenses:{card.category}"
    open_card = card.status == CardStatus.OPEN and not exception
    pending = 0
    if kind == "capture":
        # A capture posts what it spent of the pending transfer (never more than is still pending).
        pending = min(amount, disbursement.committed_cents) if open_card else 0
        disbursement.committed_cents -= pending
        over = 0
        if not open_card and not exception:
            over = min(max(card.captured_cents + amount - card.limit_cents, 0), amount)
            exception = over > 0
        lines = [
            *([LineSpec(expense, "debit", amount - over)] if amount > over else []),
            *([LineSpec(EXCEPTIONS_ACCOUNT, "debit", over)] if over else []),
            LineSpec(CASH_ACCOUNT, "credit", amount),
        ]
        card.captured_cents += amount
        disbursement.paid_cents += amount
    else:
        lines = [LineSpec(CASH_ACCOUNT, "debit", amount), LineSpec(expense, "credit", amount)]
        card.captured_cents -= amount
        disbursement.paid_cents = max(disbursement.paid_cents - amount, 0)
    entry = await post_pending(
        session,
        fund,
        pending,
        kind=f"card_{kind}",
        lines=lines,
        memo=f"{disbursement.category} {disbursement.case_code} (card {card.last4} {kind} {transaction_id})",
        posted_at=now,
        disbursement_id=disbursement.id,
    )
    if kind == "refund" and open_card and not exception:
        # The card may spend the refunded amount again (Stripe's all_time limit counts refunds back).
        room = max(card.limit_cents - max(card.captured_cents, 0), 0) - disbursement.committed_cents
        if room > 0:
            await pend(session, fund.id, room)
            disbursement.committed_cents += room
    return entry.id, exception


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
    open_card = card.status == CardStatus.OPEN
    entry_id, exception = await _post_movement(
        session, fund, disbursement, card, kind=kind, amount=amount, transaction_id=transaction_id, now=now
    )
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
        entry_id=entry_id,
        created_at=created_at,
        exception=exception,
    )
    session.add_all([txn, card, disbursement])
    await session.flush()
    if kind == "capture" and authorization_id:
        auth = await session.get(CardAuthorization, authorization_id, populate_existing=True)
        if auth is not None and auth.status == "pending":
            auth.held_cents = max(auth.held_cents - amount, 0)
            session.add(auth)
    extra = {"exception": True} if exception else {}
    await record_card_event(
        session,
        fund,
        card,
        f"card_{kind}",
        None,
        now,
        transaction=transaction_id,
        amount_cents=amount,
        entry=entry_id,
        **extra,
    )
    closed_now = False
    if is_exception(disbursement):
        pass  # the request stays cancelled or rejected; reconciliation lists the transaction
    elif open_card and card.captured_cents >= card.limit_cents:
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
    """Close `card` if it is open, voiding what is still pending; the caller commits."""
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
    """Close the card of a disbursement and void what is still pending; commit. Closing twice is
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
