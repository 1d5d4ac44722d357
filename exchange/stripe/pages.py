"""Pages for card payments, donations and reconciliation.

- `/stripe/cards`: approved requests a worker or approver may pay by virtual card, their open cards and a
  button to close one. Without a Stripe key it says plainly that payments are recorded manually.
- `/donate/{fund_id}`: a public page (no login) that sends the donor to Stripe Checkout.
- `/stripe/reconcile`: the auditor's list of differences between the journal and Stripe.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Role, User
from exchange.fund.api import card_issuer, ledger_viewer, pay_as_result
from exchange.settings import Settings
from exchange.stripe.api import card_out, client_for, close_card_as, period
from exchange.web.auth import requires_roles
from exchange.web.i18n import N_
from exchange.web.i18n import gettext as _
from exchange.web.nav import page_context
from ledger import cards, disbursements, donations, journal, reconcile
from ledger.errors import Invalid, NotFound
from ledger.models import Status
from ledger.stripe_models import Card

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
CATEGORY_NAMES = {
    "travel_local": N_("Local travel"),
    "travel_interprovincial": N_("Travel between provinces"),
    "travel_international": N_("International travel"),
    "hotel": N_("Hotel"),
    "calling_card": N_("Calling card"),
    "basic_needs": N_("Basic needs"),
    "other": N_("Other"),
}


def category_name(category: str) -> str:
    return _(CATEGORY_NAMES[category]) if category in CATEGORY_NAMES else category


_AMOUNT = re.compile(r"^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$")


def to_cents(text: str) -> int:
    """'25', '25.5', '25,50' → cents, by integer arithmetic (money never passes through a float)."""
    match = _AMOUNT.match(text or "")
    if not match:
        raise Invalid("invalid_amount", "Type an amount like 25 or 25.50.")
    whole, frac = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(frac)


class DonateForm(Struct):
    amount: str


class StripePages(Controller):
    path = "/stripe"

    @get("/cards", guards=[requires_roles(Role.CASE_WORKER, Role.FUND_APPROVER)])
    async def cards_page(self, request: Request[User, str, object], db: AsyncSession, settings: Settings) -> Template:
        user = request.user
        viewer = ledger_viewer(user)
        approved = await disbursements.list_disbursements(
            db, status=Status.APPROVED, requester_id=None if viewer.is_approver else user.id, limit=100
        )
        ids = [d.id for d in approved]
        attached = {
            c.disbursement_id: c
            for c in (await db.execute(select(Card).where(Card.disbursement_id.in_(ids)))).scalars()  # type: ignore[attr-defined]
        }
        rows = [
            {
                "d": d,
                "card": await card_out(db, attached[d.id]) if d.id in attached else None,
                "card_possible": d.category in cards.MERCHANT_CATEGORIES,
            }
            for d in approved
        ]
        return Template(
            "stripe/cards.html",
            context=page_context(
                request, rows=rows, stripe_enabled=settings.stripe_enabled, category_name=category_name
            ),
        )

    @post("/cards/{disbursement_id:str}/issue", guards=[requires_roles(Role.CASE_WORKER, Role.FUND_APPROVER)])
    async def issue(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, disbursement_id: str
    ) -> Template:
        result = await pay_as_result(
            db,
            request.user,
            disbursement_id,
            method="stripe_card",
            amount_cents=None,
            reference="",
            issuer=card_issuer(settings, request.app.state.registry.card_issuers),
        )
        card = await card_out(db, result.card) if result.card is not None else None
        # The number and CVC are on this page only, once; reloading it does not show them again.
        return Template(
            "stripe/card_issued.html",
            context=page_context(request, d=result.disbursement, card=card, issued=result.issued),
        )

    @post("/cards/{disbursement_id:str}/close", guards=[requires_roles(Role.CASE_WORKER, Role.FUND_APPROVER)])
    async def close(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, disbursement_id: str
    ) -> Redirect:
        await close_card_as(db, request.user, disbursement_id, settings)
        return Redirect(path="/stripe/cards", status_code=303)

    @get("/reconcile", guards=[requires_roles(Role.AUDITOR)])
    async def reconcile_page(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        settings: Settings,
        fund: str | None = None,
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        end: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> Template:
        funds = await journal.list_funds(db)
        chosen = fund or (funds[0].id if funds else None)
        report = None
        if chosen and settings.stripe_enabled:
            first, last = period(start, end)
            report = await reconcile.reconcile(db, client_for(settings), chosen, first, last)
        return Template(
            "stripe/reconcile.html",
            context=page_context(
                request,
                funds=funds,
                chosen=chosen,
                start=start or "",
                end=end or "",
                report=report,
                stripe_enabled=settings.stripe_enabled,
            ),
        )


class DonationPages(Controller):
    path = "/donate"

    async def _fund(self, db: AsyncSession, fund_id: str) -> Any:
        try:
            return await journal.get_fund(db, fund_id)
        except NotFound:
            raise NotFound("fund_not_found", "No such fund.") from None

    @get("/{fund_id:str}", opt={"public": True})
    async def donate_page(
        self, request: Request, db: AsyncSession, settings: Settings, fund_id: str, cancelled: bool = False
    ) -> Template:
        fund = await self._fund(db, fund_id)
        return Template(
            "stripe/donate.html",
            context=page_context(request, fund=fund, stripe_enabled=settings.stripe_enabled, cancelled=cancelled),
        )

    @post("/{fund_id:str}", opt={"public": True})
    async def donate(
        self,
        request: Request,
        db: AsyncSession,
        settings: Settings,
        fund_id: str,
        data: Annotated[DonateForm, FORM],
    ) -> Template:
        client = client_for(settings)
        base = f"{settings.base_url}/donate/{fund_id}"
        _, url = await donations.start_donation(
            db,
            fund_id,
            to_cents(data.amount),
            client=client,
            success_url=f"{base}/thanks",
            cancel_url=f"{base}?cancelled=true",
        )
        fund = await self._fund(db, fund_id)
        # A link, not a redirect: the page's CSP (form-action 'self') would stop a form's redirect to Stripe.
        return Template("stripe/checkout.html", context=page_context(request, fund=fund, checkout_url=url))

    @get("/{fund_id:str}/thanks", opt={"public": True})
    async def thanks(self, request: Request, db: AsyncSession, fund_id: str) -> Template:
        fund = await self._fund(db, fund_id)
        return Template("stripe/thanks.html", context=page_context(request, fund=fund))
