"""The Stripe webhook endpoint: verify, store once, process (ledger/stripe_events.py).

It answers `issuing_authorization.request` synchronously with `{"approved": bool}` and the
`Stripe-Version` header, well within Stripe's two seconds (bench/stripe_auth.py measures it).
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response, post
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.settings import Settings
from exchange.stripe.issuer import cancel_quietly, stripe_issuer
from ledger import stripe_events

log = structlog.get_logger()


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json", headers=headers)


@post("/webhooks/stripe", opt={"public": True}, status_code=200, include_in_schema=False)
async def stripe_webhook(request: Request, db: AsyncSession, settings: Settings) -> Response:
    """A bad signature is 400 `invalid_signature` and nothing is stored."""
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
    if (stripe_card_id := outcome.cancel_card) and (issuer := stripe_issuer(settings)) is not None:
        # The ledger already closed the card (its captures reached the limit); cancelling it stops its use.
        await cancel_quietly(issuer, stripe_card_id)
    return _json({"received": True, "duplicate": outcome.duplicate})
