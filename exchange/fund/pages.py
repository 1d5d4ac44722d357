"""Emergency fund pages (htmx): request form, approver inbox, live status, journal, spending report, rules.

Every write goes through `exchange/fund/service.py`, as the API's do; forms carry the CSRF token; live
updates arrive on the generic board socket (`/board/ws`) as fragments rendered by `exchange/fund/live.py`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from exchange.accounts.models import Role, User
from exchange.fund.exports import journal_csv_response
from exchange.fund.schemas import PERIOD, PayForm, Period, RejectForm, RequestForm, RulesForm
from exchange.fund.service import SERVICE, FundService
from exchange.web.auth import requires_roles
from exchange.web.forms import parse_money
from exchange.web.nav import page_context
from ledger.errors import Invalid, LedgerError
from ledger.models import CATEGORIES, Disbursement
from ledger.payments import MANUAL
from ledger.rules import format_rules, parse_rules

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
FundParam = Annotated[str | None, QueryParameter(name="fund")]


def _status_redirect(disbursement_id: str) -> Redirect:
    return Redirect(path=f"/ledger/requests/{disbursement_id}", status_code=303)


class LedgerPages(Controller):
    path = "/ledger"
    dependencies = {**SERVICE, **PERIOD}

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
        self, request: Request[User, str, object], service: FundService, case: str | None = None
    ) -> Template:
        funds, fund = await service.fund_choice(None)
        return Template(
            "ledger/request.html",
            context=page_context(
                request,
                funds=funds,
                fund=fund,
                cases=await service.cases(),
                chosen_case=case or "",
                categories=CATEGORIES,
                mine=[await service.summary_of(d) for d in await service.my_requests()],
            ),
        )

    @post("/cases", guards=[requires_roles(Role.CASE_WORKER)])
    async def new_case(self, service: FundService) -> Redirect:
        case = await service.create_case()
        return Redirect(path="/ledger/request", query_params={"case": case.code}, status_code=303)

    @post("/request", guards=[requires_roles(Role.CASE_WORKER)])
    async def submit_request(
        self, request: Request[User, str, object], service: FundService, data: Annotated[RequestForm, FORM]
    ) -> Template | Redirect:
        result = await service.request_disbursement(data.new_disbursement())
        if not request.htmx:
            return _status_redirect(result.disbursement.id)
        return Template("ledger/fragments/status.html", context={"d": await service.summary_of(result.disbursement)})

    @get("/requests/{disbursement_id:str}")
    async def status_page(
        self, request: Request[User, str, object], service: FundService, disbursement_id: str
    ) -> Template:
        d = await service.disbursement(disbursement_id)
        return Template(
            "ledger/status.html",
            context=page_context(
                request,
                d=await service.summary_of(d),
                note=d.note,
                is_requester=d.requester_id == request.user.id,
                is_approver=request.user.has(Role.FUND_APPROVER),
            ),
        )

    @post("/requests/{disbursement_id:str}/cancel", guards=[requires_roles(Role.CASE_WORKER)])
    async def cancel(self, service: FundService, disbursement_id: str) -> Redirect:
        await service.cancel(disbursement_id)
        return _status_redirect(disbursement_id)

    # Approvers: the inbox, live; approve or reject in place.
    @get("/inbox", guards=[requires_roles(Role.FUND_APPROVER)])
    async def inbox(self, request: Request[User, str, object], service: FundService) -> Template:
        waiting, approved = await service.inbox()
        return Template(
            "ledger/inbox.html",
            context=page_context(
                request,
                pending=[await service.summary_of(d) for d in waiting],
                approved=[await service.summary_of(d) for d in approved],
                me=request.user.id,
            ),
        )

    async def _decided(
        self, request: Request[User, str, object], service: FundService, d: Disbursement
    ) -> Template | Redirect:
        """The inbox item in place for htmx; the status page otherwise."""
        if not request.htmx:
            return _status_redirect(d.id)
        summary = await service.summary_of(d)
        return Template("ledger/fragments/inbox_item.html", context={"event": summary, "can_edit": False})

    @post("/requests/{disbursement_id:str}/approve", guards=[requires_roles(Role.FUND_APPROVER)])
    async def approve(
        self, request: Request[User, str, object], service: FundService, disbursement_id: str
    ) -> Template | Redirect:
        return await self._decided(request, service, await service.approve(disbursement_id))

    @post("/requests/{disbursement_id:str}/reject", guards=[requires_roles(Role.FUND_APPROVER)])
    async def reject(
        self,
        request: Request[User, str, object],
        service: FundService,
        disbursement_id: str,
        data: Annotated[RejectForm, FORM],
    ) -> Template | Redirect:
        return await self._decided(request, service, await service.reject(disbursement_id, data.reason))

    @post("/requests/{disbursement_id:str}/pay", guards=[requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)])
    async def pay(self, service: FundService, disbursement_id: str, data: Annotated[PayForm, FORM]) -> Redirect:
        amount_cents = parse_money(data.amount) if data.amount.strip() else None
        await service.pay(disbursement_id, method=MANUAL, amount_cents=amount_cents, reference=data.reference)
        return _status_redirect(disbursement_id)

    # Auditors: the journal with filters, CSV, and the chain check.
    @get("/journal", guards=[requires_roles(Role.AUDITOR)])
    async def journal_page(
        self, request: Request[User, str, object], service: FundService, period: Period, fund_id: FundParam = None
    ) -> Template:
        funds, fund = await service.fund_choice(fund_id)
        context: dict[str, Any] = {"entries": [], "audit": None, "summary": None}
        if fund is not None:
            _, entries = await service.journal(fund.id, period, limit=500)
            context.update(
                entries=entries, audit=await service.audit(fund.id), summary=await service.fund_summary(fund.id)
            )
        return Template(
            "ledger/journal.html",
            context=page_context(
                request, funds=funds, fund=fund, start=period.typed_start, end=period.typed_end, **context
            ),
        )

    @get("/journal.csv", guards=[requires_roles(Role.AUDITOR)])
    async def journal_export(
        self, service: FundService, period: Period, fund_id: Annotated[str, QueryParameter(name="fund")]
    ) -> Response[str]:
        return journal_csv_response(*await service.journal(fund_id, period))

    @get("/report", guards=[requires_roles(Role.AUDITOR, Role.FUND_APPROVER, Role.NETWORK_ADMIN)])
    async def report(
        self, request: Request[User, str, object], service: FundService, fund_id: FundParam = None
    ) -> Template:
        funds, fund = await service.fund_choice(fund_id)
        report = await service.spending(fund.id) if fund else None
        return Template(
            "ledger/report.html",
            context=page_context(request, funds=funds, fund=fund, report=report, categories=CATEGORIES),
        )

    # Network admin: the rule set editor, with validation and a preview on recent requests. A saved version
    # waits for a second person (another admin, or an approver of another organisation), who sees it here.
    @get("/rules", guards=[requires_roles(Role.NETWORK_ADMIN, Role.FUND_APPROVER)])
    async def rules_page(
        self,
        request: Request[User, str, object],
        service: FundService,
        fund_id: FundParam = None,
        saved: int | None = None,
        approved: int | None = None,
    ) -> Template:
        funds, fund = await service.fund_choice(fund_id)
        context: dict[str, Any] = {
            "funds": funds,
            "fund": fund,
            "saved": saved,
            "approved": approved,
            "versions": [],
            "document": "",
            "pending": None,
            "pending_document": "",
            "may_approve": False,
            "may_edit": request.user.has(Role.NETWORK_ADMIN),
            "ceilings": service.rule_ceilings(),
        }
        if fund is not None:
            version, rules, versions = await service.rules(fund.id)
            context.update(versions=versions, document=format_rules(rules), current=version)
            pending = await service.pending_rules(fund.id)
            if pending is not None:
                context.update(
                    pending=pending,
                    pending_document=format_rules(parse_rules(pending.document)),
                    may_approve=service.may_approve_rules(pending),
                )
        return Template("ledger/rules.html", context=page_context(request, **context))

    @post("/rules/preview", guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def rules_preview(self, service: FundService, data: Annotated[RulesForm, FORM]) -> Template:
        try:
            rows = await service.preview_rules(data.fund_id, data.document)
        except LedgerError as exc:
            return Template("ledger/fragments/rules_preview.html", context={"error": exc.detail, "rows": []})
        return Template("ledger/fragments/rules_preview.html", context={"error": None, "rows": rows})

    @post("/rules", guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def rules_save(self, service: FundService, data: Annotated[RulesForm, FORM]) -> Redirect:
        version = await service.save_rules(data.fund_id, data.document)
        return Redirect(
            path="/ledger/rules", query_params={"fund": data.fund_id, "saved": str(version.version)}, status_code=303
        )

    @post("/rules/approve", guards=[requires_roles(Role.NETWORK_ADMIN, Role.FUND_APPROVER)])
    async def rules_approve(self, service: FundService, data: Annotated[RulesApproveForm, FORM]) -> Redirect:
        if not data.version.isdigit():
            raise Invalid("invalid_version", "Choose a version to approve.")
        version = await service.approve_rules(data.fund_id, int(data.version))
        return Redirect(
            path="/ledger/rules",
            query_params={"fund": data.fund_id, "approved": str(version.version)},
            status_code=303,
        )


class RulesApproveForm(msgspec.Struct):
    fund_id: str
    version: str
