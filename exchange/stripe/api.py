"""The Stripe part of the API: a request's virtual card (read, close) and a fund's reconciliation."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Role, User
from exchange.settings import Settings
from exchange.stripe import service
from exchange.stripe.service import PERIOD, CardOut, Period
from exchange.web.auth import requires_roles
from ledger.reconcile_compare import Difference, Reconciliation


class StripeCardController(Controller):
    path = "/api/v1/disbursements/{disbursement_id:str}/card"
    tags = ["ledger"]

    @get("/")
    async def get_card(
        self, request: Request[User, str, object], db: AsyncSession, disbursement_id: str
    ) -> CardOut | None:
        """The request's card, or null while none was issued (the request exists; only its card does not)."""
        return await service.card_of(db, request.user, disbursement_id)

    @post("/close", status_code=200, guards=[requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)])
    async def close(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, disbursement_id: str
    ) -> CardOut:
        return await service.close_card_as(db, request.user, disbursement_id, settings)


def reconciliation_body(report: Reconciliation) -> dict[str, Any]:
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
        "differences": [difference_body(d) for d in report.differences],
        # Card transactions posted to the exceptions account: spent after the request was cancelled or rejected.
        "exceptions": [difference_body(d) for d in report.exceptions],
    }


def difference_body(d: Difference) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "object": d.object,
        "stripe_id": d.stripe_id,
        "entry_id": d.entry_id,
        "journal_cents": d.journal_cents,
        "stripe_cents": d.stripe_cents,
        "at": d.at.isoformat() if d.at else None,
        "detail": d.detail,
    }


@get(
    "/api/v1/funds/{fund_id:str}/reconciliation",
    guards=[requires_roles(Role.AUDITOR)],
    dependencies=PERIOD,
    tags=["ledger"],
)
async def fund_reconciliation(db: AsyncSession, settings: Settings, fund_id: str, period: Period) -> dict[str, Any]:
    return reconciliation_body(await service.reconciliation(db, settings, fund_id, period))
