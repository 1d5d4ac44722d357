"""Stripe in the web shell: the webhook endpoint, the card actions of the API, reconciliation, and the
wiring of the card issuer (ledger/stripe_cards.py) into the `pay` seam of exchange/api/ledger.py.

The webhook answers `issuing_authorization.request` synchronously with `{"approved": bool}` and the
`Stripe-Version` header, well within Stripe's two seconds (bench/stripe_auth.py measures it).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Litestar, Request, Response, get, post
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Organisation, Role, User
from exchange.fund.api import ledger_viewer, parse_bound
from exchange.settings import Settings
from exchange.web.auth import requires_roles
from ledger import cards, disbursements, reconcile, stripe_events
from ledger.errors import Conflict, Forbidden, NotFound
from ledger.stripe_cards import BillingAddress, CardholderProfile, StripeCardIssuer, cardholder_name, stripe_client
from ledger.stripe_models import Card
from ledger.timeutil import utcnow

log = structlog.get_logger()


def client_for(settings: Settings) -> Any:
    if not settings.stripe_secret_key:
        raise Conflict("stripe_not_configured", "Stripe is not set up; payments are recorded manually.")
    return stripe_client(settings.stripe_secret_key, settings.stripe_api_base)


def billing_address(org: Organisation) -> BillingAddress:
    """The billing address of the organisations' cards: the coalition's, from the environment (Stripe
    requires one; we keep no street addresses of member organisations)."""
    env = os.environ
    line1 = env.get("STRIPE_BILLING_LINE1", "").strip()
    if not line1:
        raise Conflict(
            "stripe_billing_missing",
            "Set STRIPE_BILLING_LINE1, STRIPE_BILLING_CITY and STRIPE_BILLING_POSTAL_CODE to issue cards.",
        )
    return BillingAddress(
        line1=line1,
        city=env.get("STRIPE_BILLING_CITY", "").strip(),
        postal_code=env.get("STRIPE_BILLING_POSTAL_CODE", "").strip(),
        state=env.get("STRIPE_BILLING_STATE", "").strip() or org.province or "QC",
        country=env.get("STRIPE_BILLING_COUNTRY", "").strip() or "CA",
    )


async def organisation_profile(session: AsyncSession, org_id: str) -> CardholderProfile:
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound("not_found", "No such organisation.")
    return CardholderProfile(org_id=org.id, name=cardholder_name(org.name), billing=billing_address(org))


def stripe_issuer(settings: Settings) -> StripeCardIssuer | None:
    if not settings.stripe_secret_key:
        return None
    return StripeCardIssuer(client_for(settings), organisation_profile)


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json", headers=headers)


@post("/webhooks/stripe", opt={"public": True}, status_code=200, include_in_schema=False)
async def stripe_webhook(request: Request, db: AsyncSession, settings: Settings) -> Response:
    """Verify, store once, process. A bad signature is 400 `invalid_signature` and nothing is stored."""
    if not settings.stripe_webhook_secret:
        # Nothing can be verified without the secret, so nothing is accepted (Stripe retries later).
        return _json({"error": "stripe_not_configured", "detail": "No webhook secret is configured."}, 400)
    payload = await request.body()
    try:
        event = stripe_events.verify(payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secret)
    except stripe_events.InvalidSignature:
        return _json({"error": "invalid_signature", "detail": "The Stripe signature does not match the body."}, 400)
    if event["type"] == stripe_events.AUTHORIZATION_REQUEST:
        # Stripe needs an answer within two seconds and the header to trust it; any failure declines.
        try:
            outcome = await stripe_events.handle_event(db, event)
            approved = outcome.result.get("approved") is True
        except Exception:
            log.exception("stripe_authorization_failed", event_id=event["id"])
            approved = False
        return _json({"approved": approved}, headers={"Stripe-Version": str(event.get("api_version") or "")})
    outcome = await stripe_events.handle_event(db, event)
    if outcome.cancel_card:
        await _cancel_quietly(settings, outcome.cancel_card)
    return _json({"received": True, "duplicate": outcome.duplicate})


async def _cancel_quietly(settings: Settings, stripe_card_id: str) -> None:
    """The ledger already closed the card; cancelling it at Stripe stops further use. A failure is logged:
    any later authorization is declined anyway because our card row is closed."""
    issuer = stripe_issuer(settings)
    if issuer is None:
        return
    try:
        await issuer.cancel_card(stripe_card_id)
    except Exception:
        log.exception("stripe_cancel_failed", card=stripe_card_id)


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


async def close_card_as(db: AsyncSession, user: User, disbursement_id: str, settings: Settings) -> Card:
    """Approvers and the requester close a card: cancelled at Stripe first (no further spending), then
    the ledger releases what was not spent and marks the request paid."""
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
    closed, _ = await cards.close_card(db, disbursement_id, reason="closed", actor_user_id=user.id)
    return closed


class StripeCardController(Controller):
    path = "/api/v1/disbursements/{disbursement_id:str}/card"
    tags = ["ledger"]

    @get("/")
    async def get_card(
        self, request: Request[User, str, object], db: AsyncSession, disbursement_id: str
    ) -> CardOut | None:
        """The request's card, or null while none was issued (the request exists; only its card does not)."""
        await disbursements.visible_disbursement(db, disbursement_id, ledger_viewer(request.user))
        card = await cards.card_for_disbursement(db, disbursement_id)
        return None if card is None else await card_out(db, card)

    @post("/close", status_code=200, guards=[requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)])
    async def close(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, disbursement_id: str
    ) -> CardOut:
        card = await close_card_as(db, request.user, disbursement_id, settings)
        return await card_out(db, card)


def period(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """`from`/`to` as in the journal API; the current month when left out."""
    now = utcnow()
    first = parse_bound(start, end=False) or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = parse_bound(end, end=True) or now + timedelta(seconds=1)
    return first.astimezone(UTC), last.astimezone(UTC)


def reconciliation_body(report: reconcile.Reconciliation) -> dict[str, Any]:
    return {
        "fund_id": report.fund_id,
        "currency": report.currency,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "ok": report.ok,
        "matched": report.matched,
        "journal_cents": report.journal_cents,
        "stripe_cents": report.stripe_cents,
        "difference_cents": report.difference_cents,
        "differences": [
            {
                "kind": d.kind,
                "object": d.object,
                "stripe_id": d.stripe_id,
                "entry_id": d.entry_id,
                "journal_cents": d.journal_cents,
                "stripe_cents": d.stripe_cents,
                "at": d.at.isoformat() if d.at else None,
                "detail": d.detail,
            }
            for d in report.differences
        ],
    }


@get("/api/v1/funds/{fund_id:str}/reconciliation", guards=[requires_roles(Role.AUDITOR)], tags=["ledger"])
async def fund_reconciliation(
    db: AsyncSession,
    settings: Settings,
    fund_id: str,
    start: Annotated[str | None, QueryParameter(name="from")] = None,
    end: Annotated[str | None, QueryParameter(name="to")] = None,
) -> dict[str, Any]:
    first, last = period(start, end)
    report = await reconcile.reconcile(db, client_for(settings), fund_id, first, last)
    return reconciliation_body(report)


async def sweep_expired_cards(app: Litestar) -> None:
    """A card past its validity is cancelled at Stripe and closed: its unspent commitment goes back."""
    settings: Settings = app.state.settings
    issuer = stripe_issuer(settings)
    async with app.state.sessionmaker() as session:
        expired = [(c.disbursement_id, c.stripe_card_id) for c in await cards.expired_cards(session)]
        await session.rollback()
        for disbursement_id, stripe_card_id in expired:
            if issuer is not None:
                try:
                    await issuer.cancel_card(stripe_card_id)
                except Exception:
                    log.exception("stripe_cancel_failed", card=stripe_card_id)
                    continue  # try again at the next sweep rather than leave a usable card
            await cards.close_card(session, disbursement_id, reason="expired", actor_user_id=None)
