"""Recurring travel on the request's status page: draw one trip (its amount and date) without a new approval.

The form sits in the status page's actions (templates/ledger/fragments/trip_form.html); an error comes back on
the same page beside its field with what was typed. The form carries the number of trips drawn when it was
shown, so a form sent twice draws once (`ledger/trips.py` `draw_trip(after_trips=...)`).
"""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from exchange.accounts.models import Role, User
from exchange.fund.service import SERVICE, FundService
from exchange.web.auth import requires_roles
from exchange.web.forms import parse_money
from exchange.web.i18n import format_money
from exchange.web.i18n import gettext as _
from exchange.web.nav import page_context
from ledger import trips
from ledger.errors import Invalid, LedgerError

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


class TripForm(msgspec.Struct):
    """As typed; every field defaults to empty so a missing one is a message beside it, never a bare 400."""

    amount: str = ""
    date: str = ""
    drawn: str = ""


def parse_trip(form: TripForm) -> tuple[int, date, dict[str, str]]:
    errors: dict[str, str] = {}
    amount_cents, day = 0, date.min
    with contextlib.suppress(Invalid):
        amount_cents = parse_money(form.amount.strip()) if form.amount.strip() else 0
    if amount_cents <= 0:
        errors["trip_amount"] = _("Write the amount of the trip in dollars, like 42 or 42.50.")
    try:
        day = date.fromisoformat(form.date.strip())
    except ValueError:
        errors["trip_date"] = _("Write the date of the trip, like 2026-12-15.")
    return amount_cents, day, errors


def trip_refusal(exc: LedgerError, currency: str) -> tuple[str, str]:
    """The form's field and the sentence for the ledger's refusal of a trip."""
    if exc.code == trips.OVER_TOTAL:
        left = format_money(int(exc.extra.get("remaining_cents", 0)), currency)
        return "trip_amount", _("This trip is more than what is left of the approved total (%(left)s).", left=left)
    if exc.code == trips.TRIPS_USED_UP:
        return "", _("Every trip of this request was drawn: ask for a new request.")
    if exc.code == trips.ALREADY_DRAWN:
        return "", _("A trip was drawn since this page was shown: check what is left before drawing another.")
    return "", _("This request can no longer be drawn on.")


class TripPages(Controller):
    path = "/ledger/requests/{disbursement_id:str}/trips"
    include_in_schema = False
    dependencies = SERVICE
    guards = [requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)]

    @post("/")
    async def draw(
        self,
        request: Request[User, str, object],
        service: FundService,
        disbursement_id: str,
        data: Annotated[TripForm, FORM],
    ) -> Redirect | Template:
        amount_cents, day, errors = parse_trip(data)
        found = await service.disbursement(disbursement_id)  # 404 for whoever may not see it
        currency = found.currency
        if not errors:
            try:
                await service.draw_trip(
                    disbursement_id,
                    amount_cents=amount_cents,
                    trip_date=day,
                    after_trips=int(data.drawn) if data.drawn.isdigit() else None,
                )
            except LedgerError as exc:
                field, message = trip_refusal(exc, currency)
                errors[field or "trip"] = message
            else:
                return Redirect(path=f"/ledger/requests/{disbursement_id}", status_code=303)
        d = await service.disbursement(disbursement_id)
        context: dict[str, Any] = {
            "d": await service.summary_of(d),
            "note": d.note,
            "is_requester": d.requester_id == request.user.id,
            "is_approver": request.user.has(Role.FUND_APPROVER),
            "trip_errors": errors,
            "trip_typed": {"amount": data.amount, "date": data.date},
        }
        return Template("ledger/status.html", context=page_context(request, **context), status_code=422)
