"""Pages of the answer at any hour: the notifications panel of the account page (and the page's own endpoint for
a browser's subscription, CSRF-checked), the service worker, the approvers' roster, a facility's answering hours.
They parse, call exchange/oncall/service.py and render."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, get, post
from litestar.response import File, Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from beds.answering import WEEKDAYS, Hours, parse_clock
from beds.errors import BedsError
from exchange.accounts.models import Role, User
from exchange.oncall.schemas import SubscriptionOut, SubscriptionRequest
from exchange.oncall.service import FacilityAnswer, PushSubscriptions, Roster
from exchange.settings import Settings
from exchange.web.auth import requires_roles
from exchange.web.forms import FORM
from exchange.web.i18n import N_
from exchange.web.i18n import gettext as _
from exchange.web.localtime import zone_for, zone_label

SERVICE_WORKER = Path(__file__).resolve().parent.parent / "web" / "static" / "sw.js"


def push_host(endpoint: str) -> str:
    """Which push service a subscription goes through (its host), the only thing about it worth showing."""
    return urlsplit(endpoint).hostname or "?"


class RosterForm(msgspec.Struct):
    night: str = ""
    approver_id: str = ""


ROSTER_ERRORS = {
    "night_out_of_range": "night",
    "not_an_approver": "approver_id",
    "already_on_roster": "approver_id",
}


def roster_message(code: str) -> str:
    return {
        "night_out_of_range": _("Choose a night from tonight to 60 nights ahead."),
        "not_an_approver": _("Choose one of the fund approvers."),
        "already_on_roster": _("This approver is already on call that night."),
    }.get(code, _("This could not be saved. Check the fields and try again."))


class PushPages(Controller):
    @get("/sw.js", opt={"public": True}, include_in_schema=False)
    async def service_worker(self) -> File:
        # Served from the root so that its scope covers every page of the app.
        return File(SERVICE_WORKER, media_type="text/javascript", content_disposition_type="inline")

    @get("/notifications/panel")
    async def panel(self, request: Request[User, str, object], db: AsyncSession, settings: Settings) -> Template:
        return Template("oncall/push_panel.html", context=await self._panel(request, db, settings))

    @post("/notifications/subscriptions", status_code=201)
    async def subscribe(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, data: SubscriptionRequest
    ) -> SubscriptionOut:
        sub = await PushSubscriptions(db, request.user, settings).subscribe(
            data.endpoint, data.keys.p256dh, data.keys.auth
        )
        return SubscriptionOut.of(sub)

    @post("/notifications/subscriptions/{subscription_id:str}/remove", status_code=200)
    async def remove(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, subscription_id: str
    ) -> Template | Redirect:
        await PushSubscriptions(db, request.user, settings).remove(subscription_id)
        if request.headers.get("hx-request"):
            return Template("oncall/push_panel.html", context=await self._panel(request, db, settings))
        return Redirect(path="/account#notifications", status_code=303)

    @staticmethod
    async def _panel(request: Request[User, str, object], db: AsyncSession, settings: Settings) -> dict[str, Any]:
        return {
            "vapid_public_key": settings.vapid_public_key if settings.vapid_private_key else None,
            "subscriptions": await PushSubscriptions(db, request.user, settings).mine(),
            "push_host": push_host,
        }


class RosterPages(Controller):
    path = "/oncall/roster"
    guards = [requires_roles(Role.FUND_APPROVER, Role.NETWORK_ADMIN)]

    @get("/")
    async def roster(self, request: Request[User, str, object], db: AsyncSession, settings: Settings) -> Template:
        return await self._page(db, request.user, settings, RosterForm(), {}, 200)

    @post("/", status_code=303)
    async def add(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        settings: Settings,
        data: Annotated[RosterForm, FORM],
    ) -> Template | Redirect:
        try:
            night = date.fromisoformat(data.night.strip())
        except ValueError:
            return await self._page(db, request.user, settings, data, {"night": _("Choose a night.")}, 422)
        try:
            await Roster(db, request.user, settings).add(night, data.approver_id)
        except BedsError as exc:
            field = ROSTER_ERRORS.get(exc.code, "form")
            return await self._page(db, request.user, settings, data, {field: roster_message(exc.code)}, 422)
        return Redirect(path="/oncall/roster", query_params={"added": "1"}, status_code=303)

    @post("/{entry_id:str}/remove", status_code=303)
    async def remove(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, entry_id: str
    ) -> Redirect:
        await Roster(db, request.user, settings).remove(entry_id)
        return Redirect(path="/oncall/roster", status_code=303)

    @staticmethod
    async def _page(
        db: AsyncSession, user: User, settings: Settings, typed: RosterForm, errors: dict[str, str], status: int
    ) -> Template:
        roster = Roster(db, user, settings)
        context = {
            "entries": await roster.entries(),
            "approvers": await roster.approvers(),
            "tonight": roster.tonight(),
            "typed": msgspec.structs.asdict(typed),
            "errors": errors,
            "settings_minutes": settings.escalation_all_approvers_minutes,
        }
        return Template("oncall/roster.html", context=context, status_code=status)


WEEKDAY_NAMES = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)


def parse_hours(form: dict[str, str]) -> tuple[Hours, dict[str, str]]:
    """The weekday rows of the form: both times, or neither (nobody answers that day)."""
    hours: Hours = {}
    errors: dict[str, str] = {}
    for day in WEEKDAYS:
        start, end = form.get(f"day{day}_start", "").strip(), form.get(f"day{day}_end", "").strip()
        if not start and not end:
            continue
        if not start or not end:
            errors[f"day{day}"] = _("Give both a start and an end time, or leave both empty.")
            continue
        try:
            opens, closes = parse_clock(start), parse_clock(end)
        except BedsError:
            errors[f"day{day}"] = _("Write the time as HH:MM, for example 08:30.")
            continue
        if opens == closes:
            errors[f"day{day}"] = _("The start and end are the same: for the whole day, tick round the clock.")
            continue
        hours[day] = (opens, closes)
    return hours, errors


def answering_message(code: str, detail: str) -> str:
    return {
        "invalid_contact": _("Write one e-mail address per line, like intake@shelter.org."),
        "too_many_contacts": _("Give at most 5 on-call addresses."),
        "no_hours": _("Give the hours of at least one day, or tick round the clock."),
    }.get(code, detail)


class AnsweringPages(Controller):
    path = "/facilities/{facility_id:str}/answering"

    @get("/")
    async def form(self, request: Request[User, str, object], db: AsyncSession, facility_id: str) -> Template:
        facility, row = await FacilityAnswer(db, request.user).current(facility_id)
        typed: dict[str, str] = {"contacts": "\n".join(row.contacts if row else [facility.oncall_email])}
        typed["round_the_clock"] = "on" if row is None or row.round_the_clock else ""
        for day, (start, end) in (row.hours if row else {}).items():
            typed[f"day{day}_start"], typed[f"day{day}_end"] = start, end
        return self._page(facility, row, typed, {}, saved=request.query_params.get("saved") == "1")

    @post("/", status_code=303)
    async def save(
        self, request: Request[User, str, object], db: AsyncSession, facility_id: str
    ) -> Template | Redirect:
        service = FacilityAnswer(db, request.user)
        facility, row = await service.current(facility_id)
        typed = {k: str(v) for k, v in (await request.form()).items() if k != "_csrf_token"}
        hours, errors = parse_hours(typed)
        if not errors:
            try:
                await service.save(
                    facility_id,
                    typed.get("round_the_clock") == "on",
                    hours,
                    typed.get("contacts", "").splitlines(),
                    zone_for(facility.province),
                )
                return Redirect(
                    path=f"/facilities/{facility_id}/answering", query_params={"saved": "1"}, status_code=303
                )
            except BedsError as exc:
                errors[exc.extra.get("field", "form")] = answering_message(exc.code, exc.detail)
        return self._page(facility, row, typed, errors, status=422)

    @staticmethod
    def _page(
        facility: Any, row: Any, typed: dict[str, str], errors: dict[str, str], status: int = 200, saved: bool = False
    ) -> Template:
        context = {
            "facility": facility,
            "answers_now": FacilityAnswer.answers_now(row),
            "typed": typed,
            "errors": errors,
            "saved": saved,
            "weekdays": [(day, _(WEEKDAY_NAMES[day])) for day in WEEKDAYS],
            "zone": zone_label(facility.province),
        }
        return Template("oncall/answering.html", context=context, status_code=status)
