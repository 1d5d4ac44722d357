"""The sweep step of cards: a card past its validity is cancelled at Stripe and closed, so its unspent
pending transfer goes back to the fund."""

from __future__ import annotations

from litestar import Litestar

from exchange.settings import Settings
from exchange.stripe.issuer import cancel_quietly, stripe_issuer
from ledger import card_postings, cards


async def sweep_expired_cards(app: Litestar) -> None:
    settings: Settings = app.state.settings
    issuer = stripe_issuer(settings)
    async with app.state.sessionmaker() as session:
        expired = [(c.disbursement_id, c.stripe_card_id) for c in await cards.expired_cards(session)]
        await session.rollback()
        for disbursement_id, stripe_card_id in expired:
            if issuer is not None and not await cancel_quietly(issuer, stripe_card_id):
                continue  # try again at the next sweep rather than leave a usable card
            await card_postings.close_card(session, disbursement_id, reason="expired", actor_user_id=None)
