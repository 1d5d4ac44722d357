"""Stripe events: verified, stored, and processed exactly once.

`verify` checks the `Stripe-Signature` header against the raw body with the SDK's own verifier and
Stripe's 300-second tolerance. `handle_event` inserts the event's row (primary key = Stripe's event id) and
does the event's work in the same transaction: a retried delivery, or two deliveries racing, meet the
primary key and the second one posts nothing; it answers with what the first one decided. Unknown event
types are stored and acknowledged. A domain error (say, a capture in another currency) is stored as a
failed event and acknowledged too: retrying would fail the same way, and reconciliation shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import card_authorizations, card_postings, cards, donations
from ledger.errors import LedgerError
from ledger.stripe_models import StripeEvent
from ledger.timeutil import utcnow

TOLERANCE_SECONDS = 300
AUTHORIZATION_REQUEST = "issuing_authorization.request"

JSON = dict[str, Any]


class InvalidSignature(Exception):
    """The body is not what Stripe signed with our secret (or is too old, or is not JSON)."""


def verify(payload: bytes, signature: str | None, secret: str) -> JSON:
    """The event, if `signature` is Stripe's for exactly these bytes within the tolerance."""
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance=TOLERANCE_SECONDS)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidSignature(str(exc)) from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise InvalidSignature("not an event")
    return event


@dataclass
class Outcome:
    event_id: str
    type: str
    duplicate: bool
    result: JSON = field(default_factory=dict)

    @property
    def cancel_card(self) -> str | None:
        """A card whose captures reached its limit: cancel it at Stripe now the postings are committed."""
        return self.result.get("cancel_card")


def _at(timestamp: Any) -> datetime:
    return datetime.fromtimestamp(int(timestamp), UTC) if isinstance(timestamp, int) else utcnow()


def _id(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


async def _authorization_request(session: AsyncSession, obj: JSON) -> JSON:
    pending = obj.get("pending_request") or {}
    decision = await card_authorizations.decide_authorization(
        session,
        authorization_id=obj["id"],
        stripe_card_id=_id(obj.get("card")) or "",
        amount_cents=int(pending.get("amount", obj.get("amount", 0))),
        currency=str(pending.get("currency") or obj.get("currency") or ""),
        merchant_category=str((obj.get("merchant_data") or {}).get("category", "")),
    )
    return {"approved": decision.approved, "reason": decision.reason}


async def _authorization_changed(session: AsyncSession, obj: JSON) -> JSON:
    status = str(obj.get("status", ""))
    changed = await card_authorizations.authorization_ended(session, obj["id"], status)
    return {"status": status, "changed": changed}


async def _transaction_created(session: AsyncSession, obj: JSON) -> JSON:
    result = await card_postings.apply_transaction(
        session,
        transaction_id=obj["id"],
        stripe_card_id=_id(obj.get("card")) or "",
        kind=str(obj.get("type", "")),
        stripe_amount_cents=int(obj.get("amount", 0)),
        currency=str(obj.get("currency", "")),
        authorization_id=_id(obj.get("authorization")),
        balance_transaction_id=_id(obj.get("balance_transaction")),
        created_at=_at(obj.get("created")),
    )
    if result.transaction is None:
        return {"posted": False, "known_card": result.card is not None}
    out: JSON = {"posted": True, "entry": result.transaction.entry_id, "amount_cents": result.transaction.amount_cents}
    if result.closed_now and result.card is not None:
        out["cancel_card"] = result.card.stripe_card_id
    return out


async def _card_updated(session: AsyncSession, obj: JSON) -> JSON:
    """Cancelled from Stripe's dashboard (or by us): the card cannot spend any more, release the rest."""
    if obj.get("status") != "canceled":
        return {"closed": False}
    card = await cards.card_by_stripe_id(session, obj["id"])
    if card is None or card.status != "open":
        return {"closed": False}
    _, released = await card_postings.close_card_in_transaction(session, card, reason="canceled_at_stripe")
    return {"closed": True, "released_cents": released}


async def _checkout_completed(session: AsyncSession, obj: JSON) -> JSON:
    donation = await donations.post_donation(
        session,
        checkout_session_id=obj["id"],
        fund_id=str((obj.get("metadata") or {}).get("fund_id", "")),
        donation_id=obj.get("client_reference_id"),
        amount_cents=int(obj.get("amount_total") or 0),
        currency=str(obj.get("currency", "")),
        payment_intent_id=_id(obj.get("payment_intent")),
        paid=obj.get("payment_status") == "paid",
    )
    return {"posted": donation is not None and donation.entry_id is not None}


async def _checkout_expired(session: AsyncSession, obj: JSON) -> JSON:
    return {"expired": await donations.expire_donation(session, obj["id"])}


HANDLERS = {
    AUTHORIZATION_REQUEST: _authorization_request,
    "issuing_authorization.updated": _authorization_changed,
    "issuing_authorization.created": _authorization_changed,
    "issuing_transaction.created": _transaction_created,
    "issuing_card.updated": _card_updated,
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _checkout_completed,
    "checkout.session.expired": _checkout_expired,
}


def _row(event: JSON, outcome: str, result: JSON) -> StripeEvent:
    return StripeEvent(
        id=event["id"],
        type=event["type"],
        api_version=str(event.get("api_version") or ""),
        livemode=bool(event.get("livemode")),
        created=_at(event.get("created")),
        outcome=outcome,
        result=result,
        payload=event,
    )


async def _duplicate(session: AsyncSession, event: JSON) -> Outcome:
    await session.rollback()
    stored = await session.get(StripeEvent, event["id"], populate_existing=True)
    result = dict(stored.result) if stored is not None else {}
    await session.commit()
    result.pop("cancel_card", None)  # the first delivery did that
    return Outcome(event["id"], event["type"], duplicate=True, result=result)


async def handle_event(session: AsyncSession, event: JSON) -> Outcome:
    """Store and process a verified event once; commit."""
    handler = HANDLERS.get(event["type"])
    row = _row(event, "processed" if handler else "ignored", {})
    try:
        # The row first: a second delivery of this id waits here (PostgreSQL) or fails here (SQLite),
        # before it touches any money.
        session.add(row)
        await session.flush()
        if handler is not None:
            row.result = await handler(session, event["data"]["object"])
            session.add(row)
            await session.flush()
        await session.commit()
    except IntegrityError:
        return await _duplicate(session, event)
    except LedgerError as exc:
        await session.rollback()
        failed = _row(event, "failed", {"error": exc.code, "detail": exc.detail})
        try:
            session.add(failed)
            await session.commit()
        except IntegrityError:
            return await _duplicate(session, event)
        return Outcome(event["id"], event["type"], duplicate=False, result=dict(failed.result))
    except Exception:
        await session.rollback()
        raise
    return Outcome(event["id"], event["type"], duplicate=False, result=dict(row.result))
