"""Pages for card payments, donations and reconciliation.

- `/stripe/cards`: approved requests a worker or approver may pay by virtual card, their open cards and a
  button to close one. Without a Stripe key it says plainly that payments are recorded manually.
- `/donate/{fund_id}`: a public page (no login) that sends the donor to Stripe Checkout.
- `/stripe/reconcile`: the auditor's list of differences between the journal and Stripe.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Role, User
from exchange.settings import Settings
from exchange.stripe import service
from exchange.stripe.service import PERIOD, Period
from exchange.web.auth import requires_roles
from exchange.web.forms import FORM, parse_money
from exchange.web.nav import page_context


class DonateForm(Struct):
    amount: str


class StripePages(Controller):
    path = "/stripe"

    @get("/cards", guards=[requires_roles(Role.CASE_WORKER, Role.FUND_APPROVER)])
    async def cards_page(self, request: Request[User, str, object], db: AsyncSession, settings: Settings) -> Template:
        rows = await service.payable_by_card(db, request.user)
        return Template(
            "stripe/cards.html", context=page_context(request, rows=rows, stripe_enabled=settings.stripe_enabled)
        )

    @post("/cards/{disbursement_id:str}/issue", guards=[requires_roles(Role.CASE_WORKER, Role.FUND_APPROVER)])
    async def issue(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, disbursement_id: str
    ) -> Template:
        factories = request.app.state.registry.card_issuers
        result = await service.issue_card_as(db, request.user, disbursement_id, settings, factories)
        # The number and CVC are on this page only, once; reloading it does not show them again.
        return Template(
            "stripe/card_issued.html",
            context=page_context(request, d=result.disbursement, card=result.card, issued=result.issued),
        )

    @post("/cards/{disbursement_id:str}/close", guards=[requires_roles(Role.CASE_WORKER, Role.FUND_APPROVER)])
    async def close(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, disbursement_id: str
    ) -> Redirect:
        await service.close_card_as(db, request.user, disbursement_id, settings)
        return Redirect(path="/stripe/cards", status_code=303)

    @get("/reconcile", guards=[requires_roles(Role.AUDITOR)], dependencies=PERIOD)
    async def reconcile_page(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        settings: Settings,
        period: Period,
        fund: str | None = None,
    ) -> Template:
        choice = await service.reconcile_choice(db, settings, fund, period)
        return Template(
            "stripe/reconcile.html",
            context=page_context(
                request,
                funds=choice.funds,
                chosen=choice.chosen,
                start=period.start or "",
                end=period.end or "",
                report=choice.report,
                stripe_enabled=settings.stripe_enabled,
            ),
        )


class DonationPages(Controller):
    path = "/donate"
    opt = {"public": True}  # donors have no account

    @get("/{fund_id:str}")
    async def donate_page(
        self, request: Request, db: AsyncSession, settings: Settings, fund_id: str, cancelled: bool = False
    ) -> Template:
        fund = await service.donation_fund(db, fund_id)
        return Template(
            "stripe/donate.html",
            context=page_context(request, fund=fund, stripe_enabled=settings.stripe_enabled, cancelled=cancelled),
        )

    @post("/{fund_id:str}")
    async def donate(
        self,
        request: Request,
        db: AsyncSession,
        settings: Settings,
        fund_id: str,
        data: Annotated[DonateForm, FORM],
    ) -> Template:
        url = await service.start_donation(db, settings, fund_id, parse_money(data.amount))
        fund = await service.donation_fund(db, fund_id)
        # A link, not a redirect: the page's CSP (form-action 'self') would stop a form's redirect to Stripe.
        return Template("stripe/checkout.html", context=page_context(request, fund=fund, checkout_url=url))

    @get("/{fund_id:str}/thanks")
    async def thanks(self, request: Request, db: AsyncSession, fund_id: str) -> Template:
        fund = await service.donation_fund(db, fund_id)
        return Template("stripe/thanks.html", context=page_context(request, fund=fund))
