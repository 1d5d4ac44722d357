"""Request and response bodies of the cases and ledger API. Unknown fields are refused (400), which is
also how personal data (a name, an immigration status) is kept out: there is no field to put it in."""

from __future__ import annotations

from datetime import datetime

import msgspec

from exchange.board.schemas import Body
from ledger.journal import EntryView, FundSummary
from ledger.models import Approval, Disbursement, Payment


class CaseCreate(Body):
    """Nothing to say: the code is generated and the lead organisation is the caller's."""


class CaseOut(msgspec.Struct):
    code: str
    lead_org_id: str


class DepositRequest(Body):
    amount_cents: int
    source: str
    note: str = ""


class DisbursementRequest(Body):
    fund_id: str
    case_code: str
    category: str
    amount_cents: int
    currency: str
    payee: str
    nights: int | None = None
    note: str = ""


class RejectRequest(Body):
    reason: str


class PayRequest(Body):
    method: str
    amount_cents: int | None = None
    reference: str = ""


class FundOut(msgspec.Struct):
    id: str
    name: str
    currency: str
    balance_cents: int
    committed_cents: int
    available_cents: int

    @classmethod
    def of(cls, s: FundSummary) -> FundOut:
        return cls(s.id, s.name, s.currency, s.balance_cents, s.committed_cents, s.available_cents)


class LineOut(msgspec.Struct):
    account: str
    side: str
    amount_cents: int


class EntryOut(msgspec.Struct):
    id: str
    fund_id: str
    seq: int
    kind: str
    posted_at: datetime
    memo: str
    disbursement_id: str | None
    total_debits_cents: int
    total_credits_cents: int
    lines: list[LineOut]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, view: EntryView) -> EntryOut:
        e = view.entry
        return cls(
            id=e.id,
            fund_id=e.fund_id,
            seq=e.seq,
            kind=e.kind,
            posted_at=e.posted_at,
            memo=e.memo,
            disbursement_id=e.disbursement_id,
            total_debits_cents=e.total_debits_cents,
            total_credits_cents=e.total_credits_cents,
            lines=[LineOut(line.account, line.side, line.amount_cents) for line in view.lines],
            prev_hash=e.prev_hash,
            hash=e.hash,
        )


class ApprovalOut(msgspec.Struct):
    approver_id: str
    organisation_id: str
    at: datetime


class PaymentOut(msgspec.Struct):
    id: str
    method: str
    amount_cents: int
    reference: str
    entry_id: str
    at: datetime

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(p.id, p.method, p.amount_cents, p.reference, p.entry_id, p.created_at)


class DisbursementOut(msgspec.Struct):
    id: str
    fund_id: str
    case_code: str
    category: str
    amount_cents: int
    currency: str
    payee: str
    nights: int | None
    note: str
    status: str
    rule: str
    rule_set_version: int
    approvals_needed: int
    approvals_remaining: int
    needs_other_org: bool
    reasons: list[str]
    approvals: list[ApprovalOut]
    requester_id: str
    committed_cents: int
    paid_cents: int
    rejection_reason: str
    created_at: datetime
    payment: PaymentOut | None = None

    @classmethod
    def of(cls, d: Disbursement, approvals: list[Approval], payment: Payment | None = None) -> DisbursementOut:
        remaining = max(d.approvals_needed - len(approvals), 0) if d.status == "pending_approval" else 0
        return cls(
            id=d.id,
            fund_id=d.fund_id,
            case_code=d.case_code,
            category=d.category,
            amount_cents=d.amount_cents,
            currency=d.currency,
            payee=d.payee,
            nights=d.nights,
            note=d.note,
            status=d.status,
            rule=d.rule,
            rule_set_version=d.rule_set_version,
            approvals_needed=d.approvals_needed,
            approvals_remaining=remaining,
            needs_other_org=d.needs_other_org,
            reasons=list(d.reasons),
            approvals=[ApprovalOut(a.approver_id, a.approver_org_id, a.at) for a in approvals],
            requester_id=d.requester_id,
            committed_cents=d.committed_cents,
            paid_cents=d.paid_cents,
            rejection_reason=d.rejection_reason,
            created_at=d.created_at,
            payment=PaymentOut.of(payment) if payment else None,
        )


class AuditOut(msgspec.Struct):
    ok: bool
    entries: int
    head_hash: str
    first_bad_entry: str | None
    problem: str | None
    audit_events: int
    audit_head_hash: str
    first_bad_event: str | None
