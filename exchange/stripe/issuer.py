"""Stripe Issuing wired into the ledger's `pay` seam (ledger/payments.py `CardIssuer`): the Stripe client
of the settings, the organisations' cardholder profile, and cancelling a card at Stripe.

`stripe_issuer` is the registry's card issuer factory (exchange/plugin.py names it); without a Stripe key
there is none, and payments are manual.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Organisation
from exchange.settings import Settings
from ledger.errors import Conflict, NotFound
from ledger.stripe_cards import BillingAddress, CardholderProfile, StripeCardIssuer, cardholder_name, stripe_client

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


async def organisation_profile(session: AsyncSession, organisation_id: str) -> CardholderProfile:
    org = await session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound("not_found", "No such organisation.")
    return CardholderProfile(organisation_id=org.id, name=cardholder_name(org.name), billing=billing_address(org))


def stripe_issuer(settings: Settings) -> StripeCardIssuer | None:
    if not settings.stripe_secret_key:
        return None
    return StripeCardIssuer(client_for(settings), organisation_profile)


async def cancel_quietly(issuer: StripeCardIssuer, stripe_card_id: str) -> bool:
    """Cancel at Stripe a card the ledger closes; a failure is logged, not raised (False). Any later
    authorization is declined anyway once our card row is closed."""
    try:
        await issuer.cancel_card(stripe_card_id)
    except Exception:
        log.exception("stripe_cancel_failed", card=stripe_card_id)
        return False
    return True
