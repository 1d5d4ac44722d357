"""Cases, funds, disbursements and the audit chain in the JSON API (see API.md, "Cases and ledger").

Handlers parse, authorise, call `ledger`, publish live events and render; the rules live in `ledger`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.channels import ChannelsPlugin
from litestar.params import QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Role, User
from exchange.fund.schemas import (
    AuditOut,
    CaseCreate,
    CaseOut,
    DepositRequest,
    DisbursementOut,
    DisbursementRequest,
    EntryOut,
    FundOut,
    PayRequest,
    RejectRequest,
)
from exchange.live.events import Audience, publish
from exchange.registry import CardIssuerFactory
from exchange.settings import Settings
from exchange.web.auth import requires_roles
from ledger import cases, disbursements, journal, payments, verify
from ledger.cards import IssuedCard
from ledger.chain import body_hash
from ledger.disbursements import LedgerViewer, Requester
from ledger.errors import Forbidden, Invalid
from ledger.journal import EntryView
from ledger.models import Disbursement, Payment
from ledger.payments import CardIssuer
from ledger.rules import Approver
from ledger.stripe_models import Card

DISBURSEMENT_EVENT = "ledger.disbursement"


def card_issuer(settings: Settings, factories: Sequence[CardIssuerFactory]) -> CardIssuer | None:
    """The Stripe seam: the first configured issuer of the plugin's list, or None (payments are then manual
    and `stripe_card` answers 409 `stripe_not_configured`)."""
    if not settings.stripe_enabled:
        return None
    for factory in factories:
        issuer = factory(settings)
        if issuer is not None:
            return issuer
    return None


def ledger_viewer(user: User) -> LedgerViewer:
    return LedgerViewer(
        user_id=user.id,
        org_id=user.organisation_id,
        is_approver=user.has(Role.FUND_APPROVER),
        is_auditor=user.has(Role.AUDITOR),
    )


def requester_of(user: User) -> Requester:
    return Requester(user_id=user.id, org_id=user.organisation_id, is_lead_worker=user.lead_worker)


def approver_of(user: User) -> Approver:
    return Approver(user_id=user.id, org_id=user.organisation_id)


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200:
        raise Invalid("invalid_idempotency_key", "An Idempotency-Key is 1 to 200 characters.")
    return key


def hash_body(body: msgspec.Struct, **extra: Any) -> str:
    return body_hash({**msgspec.to_builtins(body), **extra})


def disbursement_payload(d: Disbursement, approvals_count: int, change: str) -> dict[str, Any]:
    """What the live stream carries: only to approvers and the requester (see `publish_disbursement`)."""
    return {
        "type": DISBURSEMENT_EVENT,
        "change": change,
        "disbursement": {
            "id": d.id,
            "fund_id": d.fund_id,
            "case_code": d.case_code,
            "category": d.category,
            "amount_cents": d.amount_cents,
            "currency": d.currency,
            "payee": d.payee,
            "nights": d.nights,
            "status": d.status,
            "rule": d.rule,
            "approvals_needed": d.approvals_needed,
            "approvals": approvals_count,
            "needs_other_org": d.needs_other_org,
            "requester_id": d.requester_id,
            "paid_cents": d.paid_cents,
            "rejection_reason": d.rejection_reason,
            "created_at": d.created_at.isoformat(),
        },
    }


async def publish_disbursement(channels: ChannelsPlugin, db: AsyncSession, d: Disbursement, change: str) -> None:
    approvals = await disbursements.approvals_of(db, d.id)
    publish(
        channels,
        DISBURSEMENT_EVENT,
        disbursement_payload(d, len(approvals), change),
        Audience(users=(d.requester_id,), roles=(Role.FUND_APPROVER.value,)),
    )


async def disbursement_out(db: AsyncSession, d: Disbursement) -> DisbursementOut:
    approvals = await disbursements.approvals_of(db, d.id)
    payment = (await db.execute(select(Payment).where(Payment.disbursement_id == d.id))).scalar_one_or_none()
    return DisbursementOut.of(d, approvals, payment)


def parse_bound(value: str | None, *, end: bool) -> datetime | None:
    """`from`/`to` as a date (UTC day; `to` includes that day) or an ISO datetime with offset."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("invalid_filter", "Dates are YYYY-MM-DD or ISO 8601 with an offset.") from exc
    if moment.tzinfo is None:
        raise Invalid("invalid_filter", "A time needs a UTC offset.")
    return moment


CSV_COLUMNS = ["entry_id", "seq", "posted_at", "kind", "memo", "account", "side", "amount_cents", "currency", "hash"]


def journal_csv(views: list[EntryView], currency: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for view in sorted(views, key=lambda v: v.entry.seq):
        e = view.entry
        for line in view.lines:
            memo = e.memo
            # A cell starting with = + - @ would run as a formula in a spreadsheet.
            if memo[:1] in ("=", "+", "-", "@"):
                memo = "'" + memo
            row = [e.id, e.seq, e.posted_at.isoformat(), e.kind, memo, line.account, line.side, line.amount_cents]
            writer.writerow([*row, currency, e.hash])
    return out.getvalue()


class CaseController(Controller):
    path = "/api/v1/cases"
    tags = ["ledger"]
    guards = [requires_roles(Role.CASE_WORKER)]

    @post("/", status_code=201)
    async def create_case(
        self, request: Request[User, str, object], db: AsyncSession, data: CaseCreate | None = None
    ) -> CaseOut:
        case = await cases.create_case(db, lead_org_id=request.user.organisation_id, created_by_user_id=request.user.id)
        return CaseOut(code=case.code, lead_org_id=case.lead_org_id)


class FundController(Controller):
    path = "/api/v1/funds"
    tags = ["ledger"]

    @get("/", guards=[requires_roles(Role.FUND_APPROVER, Role.AUDITOR, Role.NETWORK_ADMIN, Role.CASE_WORKER)])
    async def list_funds(self, db: AsyncSession) -> list[FundOut]:
        return [FundOut.of(await journal.fund_summary(db, f.id)) for f in await journal.list_funds(db)]

    @get("/{fund_id:str}", guards=[requires_roles(Role.FUND_APPROVER, Role.AUDITOR, Role.NETWORK_ADMIN)])
    async def get_fund(self, db: AsyncSession, fund_id: str) -> FundOut:
        return FundOut.of(await journal.fund_summary(db, fund_id))

    @post("/{fund_id:str}/deposits", status_code=201, guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def deposit(
        self, request: Request[User, str, object], db: AsyncSession, fund_id: str, data: DepositRequest
    ) -> EntryOut:
        result = await journal.deposit(
            db,
            fund_id,
            amount_cents=data.amount_cents,
            source=data.source,
            note=data.note,
            actor_user_id=request.user.id,
            idempotency_key=idempotency_key(request),
            request_hash=hash_body(data, fund_id=fund_id),
        )
        return EntryOut.of(result.entry)

    @get("/{fund_id:str}/journal", guards=[requires_roles(Role.AUDITOR)])
    async def journal(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        fund_id: str,
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        end: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> Response[list[EntryOut]]:
        fund = await journal.get_fund(db, fund_id)
        views = await journal.list_entries(
            db, fund_id, start=parse_bound(start, end=False), end=parse_bound(end, end=True)
        )
        if "text/csv" in request.headers.get("accept", ""):
            return Response(  # type: ignore[return-value]  (the same entries, as CSV)
                journal_csv(views, fund.currency),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="journal-{fund_id}.csv"'},
            )
        return Response([EntryOut.of(v) for v in views])

    @get("/{fund_id:str}/audit", guards=[requires_roles(Role.AUDITOR)])
    async def audit(self, db: AsyncSession, fund_id: str) -> AuditOut:
        result = await verify.verify_fund(db, fund_id)
        return AuditOut(
            ok=result.ok,
            entries=result.journal.count,
            head_hash=result.journal.head_hash,
            first_bad_entry=result.journal.first_bad_id,
            problem=result.journal.problem or result.events.problem,
            audit_events=result.events.count,
            audit_head_hash=result.events.head_hash,
            first_bad_event=result.events.first_bad_id,
        )


class DisbursementController(Controller):
    path = "/api/v1/disbursements"
    tags = ["ledger"]

    @post("/", status_code=201, guards=[requires_roles(Role.CASE_WORKER)])
    async def request_disbursement(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        data: DisbursementRequest,
    ) -> DisbursementOut:
        result = await disbursements.request_disbursement(
            db,
            fund_id=data.fund_id,
            case_code=data.case_code,
            category=data.category,
            amount_cents=data.amount_cents,
            currency=data.currency,
            payee=data.payee,
            nights=data.nights,
            note=data.note,
            requester=requester_of(request.user),
            idempotency_key=idempotency_key(request),
            request_hash=hash_body(data),
        )
        if result.created:
            await publish_disbursement(channels, db, result.disbursement, "created")
        return await disbursement_out(db, result.disbursement)

    @get("/{disbursement_id:str}")
    async def get_disbursement(
        self, request: Request[User, str, object], db: AsyncSession, disbursement_id: str
    ) -> DisbursementOut:
        found = await disbursements.visible_disbursement(db, disbursement_id, ledger_viewer(request.user))
        return await disbursement_out(db, found)

    @post("/{disbursement_id:str}/approve", status_code=200, guards=[requires_roles(Role.FUND_APPROVER)])
    async def approve(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, disbursement_id: str
    ) -> DisbursementOut:
        done = await disbursements.approve(db, disbursement_id, approver=approver_of(request.user))
        await publish_disbursement(channels, db, done, "status")
        return await disbursement_out(db, done)

    @post("/{disbursement_id:str}/reject", status_code=200, guards=[requires_roles(Role.FUND_APPROVER)])
    async def reject(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        disbursement_id: str,
        data: RejectRequest,
    ) -> DisbursementOut:
        done = await disbursements.reject(db, disbursement_id, approver=approver_of(request.user), reason=data.reason)
        await publish_disbursement(channels, db, done, "status")
        return await disbursement_out(db, done)

    @post("/{disbursement_id:str}/cancel", status_code=200, guards=[requires_roles(Role.CASE_WORKER)])
    async def cancel(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, disbursement_id: str
    ) -> DisbursementOut:
        await disbursements.visible_disbursement(db, disbursement_id, ledger_viewer(request.user))
        done = await disbursements.cancel(db, disbursement_id, user_id=request.user.id)
        await publish_disbursement(channels, db, done, "status")
        return await disbursement_out(db, done)

    @post(
        "/{disbursement_id:str}/pay",
        status_code=200,
        guards=[requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)],
    )
    async def pay(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        settings: Settings,
        disbursement_id: str,
        data: PayRequest,
    ) -> Response:
        result = await pay_as_result(
            db,
            request.user,
            disbursement_id,
            method=data.method,
            amount_cents=data.amount_cents,
            reference=data.reference,
            issuer=card_issuer(settings, request.app.state.registry.card_issuers),
            idempotency_key=idempotency_key(request),
            request_hash=hash_body(data, disbursement_id=disbursement_id),
        )
        done = result.disbursement
        await publish_disbursement(channels, db, done, "status")
        body = msgspec.to_builtins(await disbursement_out(db, done))
        if result.card is not None:
            # The card's number and CVC appear here once, in the answer that issued it, and nowhere else.
            body["card"] = card_payload(result.card, result.issued)
        return Response(body)


def card_payload(card: Card, issued: IssuedCard | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": card.stripe_card_id,
        "last4": card.last4,
        "status": card.status,
        "limit_cents": card.limit_cents,
        "captured_cents": card.captured_cents,
        "valid_until": card.expires_at.isoformat(),
    }
    if issued is not None and issued.number:
        payload.update(number=issued.number, cvc=issued.cvc, exp_month=issued.exp_month, exp_year=issued.exp_year)
    return payload


async def pay_as(
    db: AsyncSession,
    user: User,
    disbursement_id: str,
    *,
    method: str,
    amount_cents: int | None,
    reference: str,
    issuer: CardIssuer | None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Disbursement:
    result = await pay_as_result(
        db,
        user,
        disbursement_id,
        method=method,
        amount_cents=amount_cents,
        reference=reference,
        issuer=issuer,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    return result.disbursement


async def pay_as_result(
    db: AsyncSession,
    user: User,
    disbursement_id: str,
    *,
    method: str,
    amount_cents: int | None,
    reference: str,
    issuer: CardIssuer | None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> payments.PaymentResult:
    """Approvers and the requester may pay; anyone else does not see the request at all."""
    viewer = ledger_viewer(user)
    found = await disbursements.visible_disbursement(db, disbursement_id, viewer)
    if not (viewer.is_approver or found.requester_id == user.id):
        raise Forbidden("forbidden", "Only an approver or the requester records a payment.")
    await db.rollback()  # end the read; the payment takes the fund lock in a transaction of its own
    return await payments.pay(
        db,
        disbursement_id,
        method=method,
        amount_cents=amount_cents,
        reference=reference,
        actor_user_id=user.id,
        card_issuer=issuer,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
