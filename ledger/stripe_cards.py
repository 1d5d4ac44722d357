"""Stripe Issuing calls: the organisation's cardholder (created once), the virtual card of a disbursement
(limited to its amount, all time, and to its category's merchants), the card's details shown once, and
cancelling a card. Every create carries an idempotency key made of our own ids, so a retried `pay` or a
retried request after a network error never makes a second cardholder or card.

This module holds no money logic: the ledger's side of a card is `ledger/cards.py` (issuing),
`ledger/card_authorizations.py` and `ledger/card_postings.py`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import stripe
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.cards import IssuedCard, merchant_categories
from ledger.errors import Conflict
from ledger.models import Disbursement
from ledger.stripe_models import Cardholder

# One client per (key, API base, event loop): the SDK's async httpx client belongs to the loop it first ran in.
_clients: dict[tuple[str, str | None, int], stripe.StripeClient] = {}


def stripe_client(secret_key: str, api_base: str | None = None) -> stripe.StripeClient:
    loop_id = id(asyncio.get_running_loop())
    key = (secret_key, api_base, loop_id)
    client = _clients.get(key)
    if client is None:
        client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,  # type: ignore[arg-type]
            max_network_retries=2,
            http_client=stripe.HTTPXClient(timeout=20, allow_sync_methods=True),
        )
        _clients[key] = client
    return client


def stripe_failure(exc: stripe.StripeError) -> Conflict:
    message = getattr(exc, "user_message", None) or str(exc) or "Stripe did not answer."
    return Conflict("stripe_error", f"Stripe refused or failed: {message}", stripe_code=getattr(exc, "code", None))


@dataclass(frozen=True)
class BillingAddress:
    line1: str
    city: str
    postal_code: str
    state: str
    country: str = "CA"


@dataclass(frozen=True)
class CardholderProfile:
    """Who the card is issued to: the requesting organisation (a company cardholder), never a person."""

    organisation_id: str
    name: str
    billing: BillingAddress


def cardholder_name(organisation_name: str) -> str:
    """Stripe takes at most 24 letters, spaces and . ' - in a cardholder name."""
    words = re.sub(r"[^\w .'\-]|[\d_]", " ", organisation_name).split()
    name = ""
    for word in words:
        candidate = f"{name} {word}".strip()
        if len(candidate) > 24:
            break
        name = candidate
    return name or "Refuge Exchange"


def card_params(disbursement: Disbursement, cardholder_id: str, amount_cents: int) -> dict[str, object]:
    return {
        "cardholder": cardholder_id,
        "currency": disbursement.currency.lower(),
        "type": "virtual",
        "status": "active",
        "spending_controls": {
            "allowed_categories": list(merchant_categories(disbursement.category)),
            "spending_limits": [{"amount": amount_cents, "interval": "all_time"}],
        },
        # Our ids only: no case details, no person.
        "metadata": {"disbursement_id": disbursement.id, "fund_id": disbursement.fund_id},
    }


class StripeCardIssuer:
    """The `CardIssuer` of ledger/payments.py backed by Stripe Issuing."""

    def __init__(
        self, client: stripe.StripeClient, profile_for: Callable[[AsyncSession, str], Awaitable[CardholderProfile]]
    ) -> None:
        self.client = client
        self.profile_for = profile_for

    async def cardholder_id(self, session: AsyncSession, organisation_id: str) -> str:
        found = await session.get(Cardholder, organisation_id)
        if found is not None:
            return found.stripe_cardholder_id
        profile = await self.profile_for(session, organisation_id)
        await session.rollback()  # no transaction stays open across the network call
        address = profile.billing
        try:
            holder = await self.client.v1.issuing.cardholders.create_async(
                params={
                    "type": "company",
                    "name": profile.name,
                    "billing": {
                        "address": {
                            "line1": address.line1,
                            "city": address.city,
                            "postal_code": address.postal_code,
                            "state": address.state,
                            "country": address.country,
                        }
                    },
                    "metadata": {"org_id": organisation_id},
                },
                options={"idempotency_key": f"refuge-cardholder-{organisation_id}"},
            )
        except stripe.StripeError as exc:
            raise stripe_failure(exc) from exc
        session.add(Cardholder(org_id=organisation_id, stripe_cardholder_id=holder.id))
        try:
            await session.commit()
        except IntegrityError:
            # A concurrent first card of the same organisation stored it first (same idempotency key, so
            # Stripe returned the same cardholder to both).
            await session.rollback()
            winner = await session.get(Cardholder, organisation_id)
            assert winner is not None
            return winner.stripe_cardholder_id
        return holder.id

    async def issue_card(self, session: AsyncSession, disbursement: Disbursement, amount_cents: int) -> IssuedCard:
        # Read what we need first: the cardholder step ends the transaction, which expires the row.
        disbursement_id, organisation_id = disbursement.id, disbursement.requester_org_id
        params = card_params(disbursement, "", amount_cents)  # refuses `other` before any Stripe call
        params["cardholder"] = await self.cardholder_id(session, organisation_id)
        await session.rollback()
        try:
            card = await self.client.v1.issuing.cards.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"refuge-card-{disbursement_id}"},
            )
            shown = await self.client.v1.issuing.cards.retrieve_async(card.id, params={"expand": ["number", "cvc"]})
        except stripe.StripeError as exc:
            raise stripe_failure(exc) from exc
        holder = card.cardholder if isinstance(card.cardholder, str) else card.cardholder.id
        return IssuedCard(
            stripe_card_id=card.id,
            stripe_cardholder_id=holder,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            number=getattr(shown, "number", None),
            cvc=getattr(shown, "cvc", None),
        )

    async def cancel_card(self, stripe_card_id: str) -> None:
        try:
            await self.client.v1.issuing.cards.update_async(stripe_card_id, params={"status": "canceled"})
        except stripe.InvalidRequestError as exc:
            if "canceled" not in str(exc):  # already cancelled is what we want
                raise stripe_failure(exc) from exc
        except stripe.StripeError as exc:
            raise stripe_failure(exc) from exc
