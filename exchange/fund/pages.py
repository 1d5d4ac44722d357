"""Emergency fund pages (htmx): request form, approver inbox, live status, journal, spending report, rules.

Every write goes through `exchange/fund/service.py`, as the API's do; forms carry the CSRF token; live
updates arrive on the generic board socket (`/board/ws`) as fragments rendered by `exchange/fund/live.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import uuid4

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from exchange.accounts.models import Role, User
from exchange.fund import rules_form
from exchange.fund.exports import journal_csv_response
from exchange.fund.live import inbox_view, moved_into
from exchange.fund.schemas import PERIOD, PayForm, Period, RejectForm, RequestForm, RulesForm, item_field
from exchange.fund.service import SERVICE, FundService
from exchange.web.auth import requires_roles
from exchange.web.forms import parse_money
from exchange.web.i18n import format_money
from exchange.web.i18n import gettext as _
from exchange.web.nav import page_context
from exchange.web.personal_data import PersonalDataRefused
from ledger.disbursements import ITEMS_MAX
from ledger.errors import Invalid, LedgerError
from ledger.models import CATEGORIES, Disbursement
from ledger.payments import MANUAL
from ledger.rules import format_rules, parse_rules
from ledger.timeutil import utcnow

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
FundParam = Annotated[str | None, QueryParameter(name="fund")]


def _status_redirect(disbursement_id: str) -> Redirect:
    return Redirect(path=f"/ledger/requests/{disbursement_id}", status_code=303)


def _case_error(exc: LedgerError) -> str:
    if exc.code == "case_limit":
        return _(
            "You opened the most cases allowed in 24 hours (%(limit)s): use an existing case or ask a coordinator.",
            limit=exc.extra.get("limit", ""),
        )
    return _("The case could not be opened. Try again.")


def _item_error(exc: LedgerError | PersonalDataRefused, several: bool) -> tuple[str, str]:
    """The form's field of a refusal, for an item's field named by its row (`items[1].payee` -> `payee-1`);
    what is about the whole request of several items (its total) is said above the form."""
    if isinstance(exc, PersonalDataRefused):
        field, message = exc.field, exc.detail
    else:
        field, message = _request_error(exc)
    path = str(getattr(exc, "extra", {}).get("path", "")) if not isinstance(exc, PersonalDataRefused) else field
    found = re.fullmatch(r"items\[(\d+)\]\.(\w+)", path)
    if found:
        name = {"amount_cents": "amount"}.get(found.group(2), found.group(2))
        return item_field(name, int(found.group(1))), message
    if several and field in ("amount", "nights", "category", "payee"):
        return "", message
    return field, message


def _request_error(exc: LedgerError) -> tuple[str, str]:
    """The field a refusal of the ledger or the service belongs to, and what to tell the person."""
    if exc.code == "case_not_found":
        return "case_code", _("This case is not one of your organisation's open cases: choose another.")
    if exc.code == "case_closed":
        return "case_code", _("This case is closed: choose an open case, or open a new one.")
    if exc.code == "amount_too_large":
        return "amount", _(
            "The amount is above the most this exchange accepts (%(max)s).",
            max=format_money(int(exc.extra.get("max_cents", 0))),
        )
    if exc.code in ("invalid_amount", "invalid_cents"):
        return "amount", _("Write the amount in dollars, like 25 or 25.50.")
    if exc.code in ("nights_required", "invalid_nights"):
        return "nights", _("Check the nights: a hotel stay needs from 1 to 60, other requests none.")
    if exc.code == "unknown_category":
        return "category", _("Choose what the money is for.")
    if exc.code == "insufficient_funds":
        return "amount", _("The fund cannot cover this amount right now. Ask a fund approver.")
    if exc.code == "idempotency_key_reused":
        return "", _("This form was already sent with other values. Reload the page to make a new request.")
    if exc.code == "rule_set_not_found":
        return "", _("This fund has no approval rules yet. Ask a network admin.")
    return "", _("The request could not be made. Check the form and try again.")


def _rules_error(exc: LedgerError) -> str:
    """A rule set the ledger refuses, in words; the technical detail follows for the JSON view."""
    if exc.code == "rule_above_ceiling":
        return _("A limit is above the ceiling the operators set.") + " " + exc.detail
    if exc.code == "invalid_rule_set":
        lead = _("The rule set is not valid. Check the JSON: every amount is a whole number of cents.")
        return lead + " " + exc.detail
    return _("The rule set could not be saved. Reload the page and try again.")


def _decision_error(exc: Exception) -> str:
    """What an approver reads when the ledger refuses their decision."""
    if isinstance(exc, PersonalDataRefused):
        return exc.detail
    code = getattr(exc, "code", "")
    return {
        "self_approval": _("This is your own request: another approver decides."),
        "already_approved": _("You approved this request already; another approver has to approve too."),
        "other_org_required": _("The last approval must come from another organisation than the requester's."),
        "invalid_state": _("This request was decided already: the list shows where it is now."),
        "reason_required": _("Say why you reject it: the requester reads the reason."),
    }.get(code, _("The request could not be decided. Reload the page and try again."))


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
    async def _request_form(
        self,
        service: FundService,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        form_error: str = "",
        result: dict[str, Any] | None = None,
        opened: str = "",
        closed: str = "",
        focus_row: int | None = None,
    ) -> dict[str, Any]:
        """What the form fragment needs: the form filled with `values` (empty after a success), a fresh
        idempotency key unless the values carry the one not used yet, and the open cases to choose from."""
        _, fund = await service.fund_choice(None)
        values = dict(values or {})
        if not values.get("idempotency_key"):
            values["idempotency_key"] = uuid4().hex
        if not values.get("rows"):
            values["rows"] = RequestForm().rows
        return {
            "fund": fund,
            "cases": await service.open_cases(),
            "values": values,
            "errors": errors or {},
            "form_error": form_error,
            "result": result,
            "opened": opened,
            "closed": closed,
            "focus_row": focus_row,
            "categories": CATEGORIES,
            "items_max": ITEMS_MAX,
            "item_field": item_field,
        }

    @get("/request", guards=[requires_roles(Role.CASE_WORKER)])
    async def request_form(
        self, request: Request[User, str, object], service: FundService, case: str | None = None
    ) -> Template:
        form = await self._request_form(service, values={"case_code": case or ""})
        return Template(
            "ledger/request.html",
            context=page_context(
                request, **form, mine=[await service.summary_of(d) for d in await service.my_requests()]
            ),
        )

    @post("/cases", guards=[requires_roles(Role.CASE_WORKER)], media_type=MediaType.HTML)
    async def new_case(self, request: Request[User, str, object], service: FundService) -> Template | Redirect:
        """Open a case in place: from the form (htmx) the form comes back with what was typed and the new case
        chosen; without htmx, the form page with the new case chosen."""
        values = RequestForm.read(await request.form()).values()
        try:
            case = await service.create_case()
        except LedgerError as exc:
            if not request.htmx:
                raise
            form = await self._request_form(service, values=values, errors={"case_code": _case_error(exc)})
            return Template("ledger/fragments/request_form.html", context=form)
        if not request.htmx:
            return Redirect(path="/ledger/request", query_params={"case": case.code}, status_code=303)
        form = await self._request_form(service, values={**values, "case_code": case.code}, opened=case.code)
        return Template("ledger/fragments/request_form.html", context=form)

    @post("/cases/{code:str}/close", guards=[requires_roles(Role.CASE_WORKER)], media_type=MediaType.HTML)
    async def close_case(
        self, request: Request[User, str, object], service: FundService, code: str
    ) -> Template | Redirect:
        """Close a case from its row (after an inline confirmation): it leaves the picker; what was already
        asked for it goes on. From the form (htmx) the form comes back with what was typed."""
        case = await service.close_case(code)
        if not request.htmx:
            return Redirect(path="/ledger/request", status_code=303)
        values = RequestForm.read(await request.form()).values()
        if values.get("case_code") == case.code:
            values["case_code"] = ""
        form = await self._request_form(service, values=values, closed=case.code)
        return Template("ledger/fragments/request_form.html", context=form)

    @post("/request/path", guards=[requires_roles(Role.CASE_WORKER)])
    async def request_path(self, request: Request[User, str, object], service: FundService) -> Template:
        """Which approval path the request would take, and why (which item, or the total), evaluated with the
        rules in force without writing anything (the form asks as it is filled)."""
        data = RequestForm.read(await request.form())
        new, _errors = data.parse()
        decision = None
        if new is not None:
            try:
                decision = await service.approval_path(new)
            except (LedgerError, PersonalDataRefused):
                decision = None
        lines = new.lines() if new is not None else ()
        context = {"decision": decision, "items": lines, "total": sum(i.amount_cents for i in lines)}
        return Template("ledger/fragments/request_path.html", context=context)

    @post("/request", guards=[requires_roles(Role.CASE_WORKER)], media_type=MediaType.HTML)
    async def submit_request(self, request: Request[User, str, object], service: FundService) -> Template | Redirect:
        """One request per form shown (its idempotency key); any error comes back beside its field with what
        was typed, every item as typed; a success clears the form and shows the request's status. "Add an
        item" and an item's "Remove" send the form too (so they work without JavaScript): it comes back with
        one item more or less, and nothing is requested."""
        form = await request.form()
        data = RequestForm.read(form)
        if form.get("add_item") or form.get("remove_item"):
            changed = data.added() if form.get("add_item") else data.removed(_row_number(form.get("remove_item")))
            context = await self._request_form(service, values=changed.values(), focus_row=len(changed.rows) - 1)
            if request.htmx:
                return Template("ledger/fragments/request_form.html", context=context)
            mine = [await service.summary_of(d) for d in await service.my_requests()]
            return Template("ledger/request.html", context=page_context(request, **context, mine=mine))
        new, errors = data.parse()
        form_error = ""
        result = None
        if new is not None:
            key = data.idempotency_key.strip()[:200] or None
            try:
                result = await service.request_disbursement(new, idempotency_key=key, request_hash=data.digest())
            except (LedgerError, PersonalDataRefused) as exc:
                field, message = _item_error(exc, several=bool(new.items))
                if field:
                    errors = {field: message}
                else:
                    form_error = message
        if result is None:
            form = await self._request_form(service, values=data.values(), errors=errors, form_error=form_error)
            if request.htmx:
                return Template("ledger/fragments/request_form.html", context=form)
            mine = [await service.summary_of(d) for d in await service.my_requests()]
            return Template("ledger/request.html", context=page_context(request, **form, mine=mine), status_code=422)
        if not request.htmx:
            return _status_redirect(result.disbursement.id)
        summary = await service.summary_of(result.disbursement)
        return Template("ledger/fragments/request_form.html", context=await self._request_form(service, result=summary))

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

    # Approvers: the inbox, live; approve (after a one-tap confirmation) or reject in place.
    @get("/inbox", guards=[requires_roles(Role.FUND_APPROVER)])
    async def inbox(self, request: Request[User, str, object], service: FundService) -> Template:
        waiting, approved = await service.inbox()
        return Template(
            "ledger/inbox.html",
            context=page_context(
                request,
                pending=[inbox_view(x) for x in await service.summaries(waiting)],
                approved=[inbox_view(x) for x in await service.summaries(approved)],
                me=request.user.id,
                now=utcnow(),
            ),
        )

    async def _decided(
        self,
        request: Request[User, str, object],
        service: FundService,
        disbursement_id: str,
        decide: Callable[[], Awaitable[Disbursement]],
    ) -> Template | Redirect:
        """For htmx, only out-of-band parts (the buttons swap nothing): a request still waiting is replaced in
        place, a decided one leaves "waiting" (and goes on top of "approved" when approved), and the approver
        reads what happened; a refusal shows beside the request's buttons. The status page otherwise."""
        if not request.htmx:
            return _status_redirect((await decide()).id)
        try:
            d = await decide()
        except (LedgerError, PersonalDataRefused) as exc:
            await service.db.rollback()
            found = await service.disbursement(disbursement_id)
            context = {"event": inbox_view(await service.summary_of(found)), "me": request.user.id, "now": utcnow()}
            context.update(oob=True, error=_decision_error(exc))
            return Template("ledger/fragments/inbox_item.html", context=context)
        summary = inbox_view(await service.summary_of(d))
        message = {
            "approved": _("Approved: the request moved to \u201cApproved, not yet paid\u201d."),
            "rejected": _("Rejected: the requester sees your reason."),
            "pending_approval": _("Your approval is recorded; another approver still has to approve."),
        }.get(d.status, "")
        context = {"event": summary, "me": request.user.id, "now": utcnow(), "message": message}
        return Template("ledger/fragments/inbox_moved.html", context={**context, "into": moved_into(d.status)})

    @post(
        "/requests/{disbursement_id:str}/approve",
        guards=[requires_roles(Role.FUND_APPROVER)],
        media_type=MediaType.HTML,
    )
    async def approve(
        self, request: Request[User, str, object], service: FundService, disbursement_id: str
    ) -> Template | Redirect:
        return await self._decided(
            request, service, disbursement_id, lambda: service.approve(disbursement_id, in_place=bool(request.htmx))
        )

    @post(
        "/requests/{disbursement_id:str}/reject", guards=[requires_roles(Role.FUND_APPROVER)], media_type=MediaType.HTML
    )
    async def reject(
        self,
        request: Request[User, str, object],
        service: FundService,
        disbursement_id: str,
        data: Annotated[RejectForm, FORM],
    ) -> Template | Redirect:
        async def decide() -> Disbursement:
            if not data.reason.strip():
                raise Invalid("reason_required", "Say why you reject it.")
            return await service.reject(disbursement_id, data.reason, in_place=bool(request.htmx))

        return await self._decided(request, service, disbursement_id, decide)

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
        fund, views = await service.journal(fund_id, period)
        return journal_csv_response(fund, views, period.typed_start, period.typed_end)

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

    # Network admin: the rule set editor, a form in dollars (the JSON is the advanced view), with the difference
    # from the version in force and a preview on recent requests. A saved version waits for a second person
    # (another admin, or an approver of another organisation), who sees it here with its difference.
    async def _rules_context(
        self,
        request: Request[User, str, object],
        service: FundService,
        fund_id: str | None,
        **extra: Any,
    ) -> dict[str, Any]:
        funds, fund = await service.fund_choice(fund_id)
        context: dict[str, Any] = {
            "funds": funds,
            "fund": fund,
            "saved": None,
            "approved": None,
            "versions": [],
            "document": "",
            "pending": None,
            "pending_document": "",
            "pending_changes": [],
            "may_approve": False,
            "may_edit": request.user.has(Role.NETWORK_ADMIN),
            "ceilings": service.rule_ceilings(),
            "fields": rules_form.FIELDS,
            "sections": rules_form.SECTIONS,
            "budget_prefix": rules_form.BUDGET_PREFIX,
            "categories": CATEGORIES,
            "values": {},
            "errors": {},
            "changes": None,
            "rows": None,
            "json_error": "",
        }
        if fund is not None:
            version, rules, versions = await service.rules(fund.id)
            names = await service.user_names(
                {v.created_by_user_id for v in versions if v.created_by_user_id}
                | {v.approved_by_user_id for v in versions if v.approved_by_user_id}
            )
            context.update(
                versions=versions,
                names=names,
                document=format_rules(rules),
                current=version,
                values=rules_form.form_values(rules),
            )
            pending = await service.pending_rules(fund.id)
            if pending is not None:
                pending_rules = parse_rules(pending.document)
                context.update(
                    pending=pending,
                    pending_document=format_rules(pending_rules),
                    pending_changes=rules_form.difference(rules, pending_rules),
                    may_approve=service.may_approve_rules(pending),
                )
        context.update(extra)
        return context

    @get("/rules", guards=[requires_roles(Role.NETWORK_ADMIN, Role.FUND_APPROVER)])
    async def rules_page(
        self,
        request: Request[User, str, object],
        service: FundService,
        fund_id: FundParam = None,
        saved: int | None = None,
        approved: int | None = None,
    ) -> Template:
        context = await self._rules_context(request, service, fund_id, saved=saved, approved=approved)
        return Template("ledger/rules.html", context=page_context(request, **context))

    @post("/rules/form", guards=[requires_roles(Role.NETWORK_ADMIN)], media_type=MediaType.HTML)
    async def rules_form_post(self, request: Request[User, str, object], service: FundService) -> Template | Redirect:
        """The form's two buttons: "check" shows the difference and the preview; "save" stores a new version.
        Any error comes back beside its field with what was typed."""
        form = await request.form()
        fund_id = str(form.get("fund_id", ""))
        values = rules_form.typed_values(form)
        document, errors = rules_form.parse_form(values, service.rule_ceilings())
        if document is None:
            context = await self._rules_context(request, service, fund_id, values=values, errors=errors)
            return Template("ledger/rules.html", context=page_context(request, **context), status_code=422)
        text = json.dumps(document)
        if form.get("action") == "save":
            try:
                version = await service.save_rules(fund_id, text)
            except LedgerError as exc:
                context = await self._rules_context(
                    request, service, fund_id, values=values, errors={"form": _rules_error(exc)}
                )
                return Template("ledger/rules.html", context=page_context(request, **context), status_code=422)
            return Redirect(
                path="/ledger/rules", query_params={"fund": fund_id, "saved": str(version.version)}, status_code=303
            )
        _, in_force, _ = await service.rules(fund_id)
        rows = await service.preview_rules(fund_id, text)
        changes = rules_form.difference(in_force, parse_rules(document))
        context = await self._rules_context(request, service, fund_id, values=values, changes=changes, rows=rows)
        return Template("ledger/rules.html", context=page_context(request, **context))

    @post("/rules/restore", guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def rules_restore(self, service: FundService, data: Annotated[RulesApproveForm, FORM]) -> Redirect:
        """An older version back, as a new version: it still needs a second person's approval."""
        if not data.version.isdigit():
            raise Invalid("invalid_version", "Choose a version to restore.")
        version = await service.restore_rules(data.fund_id, int(data.version))
        return Redirect(
            path="/ledger/rules", query_params={"fund": data.fund_id, "saved": str(version.version)}, status_code=303
        )

    @post("/rules/preview", guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def rules_preview(self, service: FundService, data: Annotated[RulesForm, FORM]) -> Template:
        try:
            rows = await service.preview_rules(data.fund_id, data.document)
        except LedgerError as exc:
            return Template("ledger/fragments/rules_preview.html", context={"error": _rules_error(exc), "rows": []})
        return Template("ledger/fragments/rules_preview.html", context={"error": None, "rows": rows})

    @post("/rules", guards=[requires_roles(Role.NETWORK_ADMIN)], media_type=MediaType.HTML)
    async def rules_save(
        self, request: Request[User, str, object], service: FundService, data: Annotated[RulesForm, FORM]
    ) -> Template | Redirect:
        """The advanced view: the JSON document as typed; an error keeps it in the box with the message."""
        try:
            version = await service.save_rules(data.fund_id, data.document)
        except LedgerError as exc:
            context = await self._rules_context(
                request, service, data.fund_id, document=data.document, json_error=_rules_error(exc), advanced=True
            )
            return Template("ledger/rules.html", context=page_context(request, **context), status_code=422)
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


def _row_number(value: object) -> int:
    return int(value) if isinstance(value, str) and value.isdigit() else 0


class RulesApproveForm(msgspec.Struct):
    fund_id: str
    version: str
