"""Cases, funds, disbursements and the audit chain in the JSON API (see API.md, "Cases and ledger").

Handlers parse, call `FundService` (exchange/fund/service.py) and render; the rules live in `ledger`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from msgspec.structs import asdict

from exchange.accounts.models import Role, User
from exchange.fund.exports import journal_csv_response
from exchange.fund.schemas import (
    PERIOD,
    AuditOut,
    CaseCreate,
    CaseOut,
    DepositRequest,
    DisbursementOut,
    DisbursementRequest,
    EntryOut,
    FundOut,
    PayRequest,
    Period,
    RejectRequest,
    ServesOut,
    TripOut,
    TripRequest,
    read_out,
)
from exchange.fund.service import SERVICE, FundService
from exchange.web.auth import requires_roles
from exchange.web.forms import idempotency_key, request_hash
from ledger.cards import IssuedCard
from ledger.errors import Invalid
from ledger.models import Disbursement
from ledger.stripe_models import Card
from ledger.trips import remaining_cents


async def require_integer_cents(request: Request[User, str, object], *fields: str) -> None:
    """Money is a JSON integer of cents: "100", 100.0 or true are refused, not coerced (the handler's body
    was already converted leniently, so this reads the JSON as sent)."""
    body = await request.json()
    if not isinstance(body, dict):
        return
    for name in fields:
        value = body.get(name)
        if value is not None and type(value) is not int:
            raise Invalid("invalid_amount", f"{name} is a JSON integer of cents, like 2500 for 25.00.", field=name)


async def require_integer_item_cents(request: Request[User, str, object]) -> None:
    """Each item's `amount_cents` too is a JSON integer, refused with the item's path."""
    body = await request.json()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return
    for position, item in enumerate(items):
        value = item.get("amount_cents") if isinstance(item, dict) else None
        if value is not None and type(value) is not int:
            path = f"items[{position}].amount_cents"
            raise Invalid(
                "invalid_amount", f"{path} is a JSON integer of cents, like 2500 for 25.00.", path=path, item=position
            )


async def disbursement_out(service: FundService, d: Disbursement) -> DisbursementOut:
    served = await service.bed_served(d)
    return DisbursementOut.of(d, *await service.details(d), serves=ServesOut(**served) if served else None)


class CaseController(Controller):
    path = "/api/v1/cases"
    tags = ["ledger"]
    guards = [requires_roles(Role.CASE_WORKER)]
    dependencies = SERVICE

    @post("/", status_code=201)
    async def create_case(
        self, request: Request[User, str, object], service: FundService, data: CaseCreate | None = None
    ) -> CaseOut:
        key, digest = idempotency_key(request), request_hash(data)
        case = await service.create_case(idempotency_key=key, request_hash=digest)
        return CaseOut(code=case.code, lead_org_id=case.lead_org_id)

    @post("/{code:str}/close", status_code=200)
    async def close_case(self, service: FundService, code: str) -> CaseOut:
        """Closing a closed case answers it again: a repeated request (same Idempotency-Key or not) acts once."""
        case = await service.close_case(code)
        return CaseOut(code=case.code, lead_org_id=case.lead_org_id, closed_at=case.closed_at)


class FundController(Controller):
    path = "/api/v1/funds"
    tags = ["ledger"]
    dependencies = {**SERVICE, **PERIOD}

    @get("/", guards=[requires_roles(Role.FUND_APPROVER, Role.AUDITOR, Role.NETWORK_ADMIN, Role.CASE_WORKER)])
    async def list_funds(self, service: FundService) -> list[FundOut]:
        return [read_out(summary, FundOut) for summary in await service.fund_summaries()]

    @get("/{fund_id:str}", guards=[requires_roles(Role.FUND_APPROVER, Role.AUDITOR, Role.NETWORK_ADMIN)])
    async def get_fund(self, service: FundService, fund_id: str) -> FundOut:
        return read_out(await service.fund_summary(fund_id), FundOut)

    @post("/{fund_id:str}/deposits", status_code=201, guards=[requires_roles(Role.NETWORK_ADMIN)])
    async def deposit(
        self, request: Request[User, str, object], service: FundService, fund_id: str, data: DepositRequest
    ) -> EntryOut:
        await require_integer_cents(request, "amount_cents")
        key, digest = idempotency_key(request), request_hash(data, fund_id=fund_id)
        result = await service.deposit(fund_id, **asdict(data), idempotency_key=key, request_hash=digest)
        return EntryOut.of(result.entry)

    @get("/{fund_id:str}/journal", guards=[requires_roles(Role.AUDITOR)])
    async def journal(
        self, request: Request[User, str, object], service: FundService, fund_id: str, period: Period
    ) -> Response[list[EntryOut]]:
        fund, views = await service.journal(fund_id, period)
        if "text/csv" in request.headers.get("accept", ""):
            return journal_csv_response(fund, views, period.typed_start, period.typed_end)  # type: ignore[return-value]  (the same entries, as CSV)
        return Response([EntryOut.of(v) for v in views])

    @get("/{fund_id:str}/audit", guards=[requires_roles(Role.AUDITOR)])
    async def audit(self, service: FundService, fund_id: str) -> AuditOut:
        return AuditOut.of(await service.audit(fund_id))


class DisbursementController(Controller):
    path = "/api/v1/disbursements"
    tags = ["ledger"]
    dependencies = SERVICE

    @post("/", status_code=201, guards=[requires_roles(Role.CASE_WORKER)])
    async def request_disbursement(
        self, request: Request[User, str, object], service: FundService, data: DisbursementRequest
    ) -> DisbursementOut:
        await require_integer_cents(request, "amount_cents")
        await require_integer_item_cents(request)
        key, digest = idempotency_key(request), request_hash(data)
        result = await service.request_disbursement(data.new_disbursement(), idempotency_key=key, request_hash=digest)
        return await disbursement_out(service, result.disbursement)

    @get("/{disbursement_id:str}")
    async def get_disbursement(self, service: FundService, disbursement_id: str) -> DisbursementOut:
        return await disbursement_out(service, await service.disbursement(disbursement_id))

    @post("/{disbursement_id:str}/approve", status_code=200, guards=[requires_roles(Role.FUND_APPROVER)])
    async def approve(
        self, request: Request[User, str, object], service: FundService, disbursement_id: str
    ) -> DisbursementOut:
        key, digest = idempotency_key(request), request_hash(None, disbursement_id=disbursement_id)
        return await disbursement_out(
            service, await service.approve(disbursement_id, idempotency_key=key, request_hash=digest)
        )

    @post("/{disbursement_id:str}/reject", status_code=200, guards=[requires_roles(Role.FUND_APPROVER)])
    async def reject(self, service: FundService, disbursement_id: str, data: RejectRequest) -> DisbursementOut:
        return await disbursement_out(service, await service.reject(disbursement_id, data.reason))

    @post("/{disbursement_id:str}/cancel", status_code=200, guards=[requires_roles(Role.CASE_WORKER)])
    async def cancel(self, service: FundService, disbursement_id: str) -> DisbursementOut:
        return await disbursement_out(service, await service.cancel(disbursement_id))

    @post(
        "/{disbursement_id:str}/pay",
        status_code=200,
        guards=[requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)],
    )
    async def pay(
        self, request: Request[User, str, object], service: FundService, disbursement_id: str, data: PayRequest
    ) -> Response:
        await require_integer_cents(request, "amount_cents")
        key, digest = idempotency_key(request), request_hash(data, disbursement_id=disbursement_id)
        result = await service.pay(disbursement_id, **asdict(data), idempotency_key=key, request_hash=digest)
        body = msgspec.to_builtins(await disbursement_out(service, result.disbursement))
        if result.card is not None:
            # The card's number and CVC appear here once, in the answer that issued it, and nowhere else.
            body["card"] = card_payload(result.card, result.issued)
        return Response(body)


class TripController(Controller):
    """Recurring travel: each trip drawn against the request approved once."""

    path = "/api/v1/disbursements/{disbursement_id:str}/trips"
    tags = ["ledger"]
    dependencies = SERVICE
    guards = [requires_roles(Role.FUND_APPROVER, Role.CASE_WORKER)]

    @post("/", status_code=201)
    async def draw_trip(
        self, request: Request[User, str, object], service: FundService, disbursement_id: str, data: TripRequest
    ) -> TripOut:
        await require_integer_cents(request, "amount_cents")
        key, digest = idempotency_key(request), request_hash(data, disbursement_id=disbursement_id)
        result = await service.draw_trip(
            disbursement_id,
            amount_cents=data.amount_cents,
            trip_date=data.trip_date,
            idempotency_key=key,
            request_hash=digest,
        )
        d, trip = result.disbursement, result.trip
        return TripOut(
            id=trip.id,
            disbursement_id=d.id,
            seq=trip.seq,
            amount_cents=trip.amount_cents,
            trip_date=trip.trip_date,
            entry_id=trip.entry_id,
            at=trip.created_at,
            trips_drawn=d.trips_drawn,
            trips_max=d.trips_max or 0,
            paid_cents=d.paid_cents,
            remaining_cents=remaining_cents(d),
            status=d.status,
        )


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
