"""Emergency fund pages (htmx): request form, approver inbox, live status, journal, spending report, rules.

Every write goes through the same `ledger` functions as the API; forms carry the CSRF token; live updates
arrive on the generic board socket (`/board/ws`) as fragments rendered by `exchange/pages/ledger_stream.py`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.channels import ChannelsPlugin
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Role, User
from exchange.fund.api import (
    approver_of,
    journal_csv,
    ledger_viewer,
    parse_bound,
    pay_as,
    publish_disbursement,
    requester_of,
)
from exchange.settings import Settings
from exchange.web.auth import requires_roles
from exchange.web.nav import page_context
from ledger import cases, disbursements, journal, reports, rulesets, verify
from ledger.errors import Invalid, LedgerError
from ledger.models import CATEGORIES, Disbursement, Status
from ledger.rules import format_rules, parse_rules

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


class RequestForm(Struct):
    fund_id: str
    case_code: str
    category: str
    amount: str
    payee: str = ""
    nights: str = ""
    note: str = ""


class RejectForm(Struct):
    reason: str = ""


class PayForm(Struct):
    amount: str = ""
    reference: str = ""


class RulesForm(Struct):
    fund_id: str
    document: str


def to_cents(text: str) -> int:
    """ "12.50" or "12,50" → 1250, through Decimal: money never passes through a float."""
    try:
        value = Decimal(text.strip().replace(",", ".").replace("$", "").replace(" ", ""))
    except InvalidOperation as exc:
        raise Invalid("invalid_amount", "Write the amount as dollars and cents, e.g. 12.50.") from exc
    if value != value.quantize(Decimal("0.01")):
        raise Invalid("invalid_amount", "Amounts have at most two decimals.")
    return int(value * 100)


async def _fund_choice(db: AsyncSession, fund_id: str | None) -> tuple[list[Any], Any | None]:
    funds = await journal.list_funds(db)
    chosen = next((f for f in funds if f.id == fund_id), funds[0] if funds else None)
    return funds, chosen


def _status_context(d: Disbursement, approvals: int) -> dict[str, Any]:
    return {
        "id": d.id,
        "case_code": d.case_code,
        "category": d.category,
        "amount_cents": d.amount_cents,
        "currency": d.currency,
        "payee": d.payee,
        "nights": d.nights,
        "status": d.status,
        "rule": d.rule,
        "approvals_needed": d.approvals_needed,
        "approvals": approvals,
        "needs_other_org": d.needs_other_org,
        "requester_id": d.requester_id,
        "paid_cents": d.paid_cents,
        "rejection_reason": d.rejection_reason,
    }


async def _status(db: AsyncSession, d: Disbursement) -> dict[str, Any]:
    return _status_context(d, len(await disbursements.approvals_of(db, d.id)))


class LedgerPages(Controller):
    path = "/ledger"

    @get("/")
    async def index(self, request: Request[User, str, object]) -> Redirect:
        user = request.user
        for role, target in (
            (Role.CASE_WORKER, "/ledger/request"),
            (Role.FUND_APPROVER, "/ledger/inbox"),
            (Role.AUDITOR, "/ledger/journal"),
            (Role.NETWORK_ADMIN, "/ledger/rules"),
        ):
            if user.has(role):
                return Redirect(path=target)
        return Redirect(path="/")

    # Case worker: the request form and their requests, live.
    @get("/request", guards=[requires_roles(Role.CASE_WORKER)])
    async def request_form(
        self, request: Request[User, str, object], db: AsyncSession, case: str | None = None
    ) -> Template:
        funds, fund = await _fund_choice(db, None)
        mine = await disbursements.list_disbursements(db, requester_id=request.user.id, limit=20)
        return Template(
            "ledger/request.html",
            context=page_context(
                request,
                funds=funds,
                fund=fund,
                cases=await cases.cases_for_org(db, request.user.organisation_id),
                chosen_case=case or "",
                categories=CATEGORIES,
                mine=[await _status(db, d) for d in mine],
            ),
        )

    @post("/cases", guards=[requires_roles(Role.CASE_WORKER)])
    async def new_case(self, request: Request[User, str, object], db: AsyncSession) -> Redirect:
        case = await cases.create_case(db, lead_org_id=request.user.organisation_id, created_by_user_id=request.user.id)
        return Redirect(path="/ledger/request", query_params={"case": case.code}, status_code=303)

    @post("/request", guards=[requires_roles(Role.CASE_WORKER)])
    async def submit_request(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        data: Annotated[RequestForm, FORM],
    ) -> Template | Redirect:
        nights = int(data.nights) if data.nights.strip().isdigit() else None
        result = await disbursements.request_disbursement(
            db,
            fund_id=data.fund_id,
            case_code=data.case_code,
            category=data.category,
            amount_cents=to_cents(data.amount),
            currency=(await journal.get_fund(db, data.fund_id)).currency,
            payee=data.payee,
            nights=nights if data.category == "hotel" else None,
            note=data.note,
            requester=requester_of(request.user),
        )
        await publish_disbursement(channels, db, result.disbursement, "created")
        if not request.htmx:
            return Redirect(path=f"/ledger/requests/{result.disbursement.id}", status_code=303)
        return Template("ledger/fragments/status.html", context={"d": await _status(db, result.disbursement)})

    @get("/requests/{disbursement_id:str}")
    async def status_page(
        self, request: Request[User, str, object], db: AsyncSession, disbursement_id: str
    ) -> Template:
        d = await disbursements.visible_disbursement(db, disbursement_id, ledger_viewer(request.user))
        return Template(
            "ledger/status.html",
            context=page_context(
                request,
                d=await _status(db, d),
                note=d.note,
                is_requester=d.requester_id == request.user.id,
                is_approver=request.user.has(Role.FUND_APPROVER),
            ),
        )

    @post("/requests/{disbursement_id:str}/cancel", guards=[requires_roles(Role.CASE_WORKER)])
    async def cancel(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, disbursement_id: str
    ) -> Redirect:
        await disbursements.visible_disbursement(db, disbursement_id, ledger_viewer(request.user))
        done = await disbursements.cancel(db, disbursement_id, user_id=request.user.id)
        await publish_disbursement(channels, db, done, "status")
        return Redirect(path=f"/ledger/requests/{disbursement_id}", status_code=303)

    # Approvers: the inbox, live; approve or reject in place.
    @get("/inbox", guards=[requires_roles(Role.FUND_APPROVER)])
    async def inbox(self, request: Request[User, str, object], db: AsyncSession) -> Template:
        pending = await disbursements.list_disbursements(db, status=Status.PENDING_APPROVAL, limit=200)
        recent = await disbursements.list_disbursements(db, status=Status.APPROVED, limit=50)
        return Template(
            "ledger/inbox.html",
            context=page_context(
                request,
                pending=[await _status(db, d) for d in pending],
                approved=[await _status(db, d) for d in recent],
                me=request.user.id,
            ),
        )

    async def _inbox_item(self, request: Request[User, str, object], db: AsyncSession, d: Disbursement) -> Template:
        return Template("ledger/fragments/inbox_item.html", context={"event": await _status(db, d), "can_edit": False})

    @post("/requests/{disbursement_id:str}/approve", guards=[requires_roles(Role.FUND_APPROVER)])
    async def approve(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, disbursement_id: str
    ) -> Template | Redirect:
        done = await disbursements.approve(db, disbursement_id, approver=approver_of(request.user))
        await publish_disbursement(channels, db, done, "status")
        if not request.htmx:
            return Redirect(path=f"/ledger/requests/{disbursement_id}", status_code=303)
        return await self._inbox_item(request, db, done)

    @post("/requests/{disbursement_id:str}/reject", guards=[requires_roles(Role.FUND_APPROVER)])
    async def reject(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        disbursement_id: str,
        data: Annotated[RejectForm, FORM],
    ) -> Template | Redirect:
        done = await disbursements.reject(db, disbursement_id, approver=approver_of(request.user), reason=data.reason)
        await publish_disbursement(channels, db, done, "status")
        if not request.htmx:
            return Redirect(path=f"/ledger/requests/{disbursement_id}", status_code=303)
        return await self._inbox_item(request, db, done)

    @post("/requests/{disbursement_id:str}/pay", guards=[requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)])
    async def pay(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        settings: Settings,
        disbursement_id: str,
        data: Annotated[PayForm, FORM],
    ) -> Redirect:
        done = await pay_as(
            db,
            request.user,
            disbursement_id,
            method="manual",
            amount_cents=to_cents(data.amount) if data.amount.strip() else None,
            reference=data.reference,
            issuer=None,  # a manual payment issues no card
        )
        await publish_disbursement(channels, db, done, "status")
        return Redirect(path=f"/ledger/requests/{disbursement_id}", status_code=303)

    # Auditors: the journal with filters, CSV, and the chain check.
    @get("/journal", guards=[requires_roles(Role.AUDITOR)])
    async def journal_page(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        fund_id: Annotated[str | None, QueryParameter(name="fund")] = None,
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        end: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> Template:
        funds, fund = await _fund_choice(db, fund_id)
        entries = []
        audit = None
        if fund is not None:
            entries = await journal.list_entries(
                db, fund.id, start=parse_bound(start, end=False), end=parse_bound(end, end=True), limit=500
            )
            audit = await verify.verify_fund(db, fund.id)
            summary = await journal.fund_summary(db, fund.id)
        return Template(
            "ledger/journal.html",
            context=page_context(
                request,
                funds=funds,
                fund=fund,
                summary=summary if fund else None,
                entries=entries,
                audit=audit,
                start=start or "",
                end=end or "",
            ),
        )

    @get("/journal.csv", guards=[requires_roles(Role.AUDITOR)])
    async def journal_export(
        self,
        db: AsyncSession,
        fund_id: Annotated[str, QueryParameter(name="fund")],
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        end: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> Response:
        fund = await journal.get_fund(db, fund_id)
        views = await journal.list_entries(
            db, fund_id, start=parse_bound(start, end=False), end=parse_bound(end, end=True)
        )
        return Response(
            journal_csv(views, fund.currency),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="journal-{fund_id}.csv"'},
        )

    @get("/report", guards=[requires_roles(Role.AUDITOR, Role.FUND_APPROVER, Role.NETWORK_ADMIN)])
    async def report(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        fund_id: Annotated[str | None, QueryParameter(name="fund")] = None,
    ) -> Template:
        funds, fund = await _fund_choice(db, fund_id)
        report = await reports.spending_report(db, fund.id) if fund else None
        return Template(
            "ledger/report.html",
            context=page_context(request, funds=funds, fund=fund, report=report, categories=CATEGORIES),
        )

    # Network admin: the rule set editor, with validation and a preview on recent requests.
    @get("/rules", guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def rules_page(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        fund_id: Annotated[str | None, QueryParameter(name="fund")] = None,
        saved: int | None = None,
    ) -> Template:
        funds, fund = await _fund_choice(db, fund_id)
        context: dict[str, Any] = {"funds": funds, "fund": fund, "saved": saved, "versions": [], "document": ""}
        if fund is not None:
            version, rules = await rulesets.current_rule_set(db, fund.id)
            context.update(
                versions=await rulesets.rule_set_versions(db, fund.id),
                document=format_rules(rules),
                current=version,
            )
        return Template("ledger/rules.html", context=page_context(request, **context))

    @post("/rules/preview", guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def rules_preview(self, db: AsyncSession, data: Annotated[RulesForm, FORM]) -> Template:
        try:
            rules = parse_rules(data.document)
        except LedgerError as exc:
            return Template("ledger/fragments/rules_preview.html", context={"error": exc.detail, "rows": []})
        rows = await rulesets.preview_rule_set(db, data.fund_id, rules)
        return Template("ledger/fragments/rules_preview.html", context={"error": None, "rows": rows})

    @post("/rules", guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def rules_save(
        self, request: Request[User, str, object], db: AsyncSession, data: Annotated[RulesForm, FORM]
    ) -> Redirect:
        version = await rulesets.save_rule_set(db, data.fund_id, data.document, actor_user_id=request.user.id)
        return Redirect(
            path="/ledger/rules", query_params={"fund": data.fund_id, "saved": str(version.version)}, status_code=303
        )
