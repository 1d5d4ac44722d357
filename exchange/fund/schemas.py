"""Request and response bodies of the cases and ledger API, the pages' forms, and the journal's date filter.

API bodies refuse unknown fields (400), which is also how personal data (a name, an immigration status) is
kept out: there is no field to put it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
from litestar.di import Provide
from litestar.params import QueryParameter

from exchange.web.forms import parse_money, request_hash
from exchange.web.i18n import gettext as _
from exchange.web.schemas import Body
from ledger.disbursements import NIGHTS_MAX, NewDisbursement
from ledger.errors import Invalid
from ledger.journal import EntryView
from ledger.models import CATEGORIES, Approval, Disbursement, Payment
from ledger.rules import counts_nights
from ledger.verify import FundAudit

Out = TypeVar("Out", bound=msgspec.Struct)


class CaseCreate(Body):
    """Nothing to say: the code is generated and the lead organisation is the caller's."""


class CaseOut(msgspec.Struct, omit_defaults=True):
    code: str
    lead_org_id: str
    # Only once the case is closed (API.md's case is `{"code", "lead_org_id"}`).
    closed_at: datetime | None = None


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

    def new_disbursement(self) -> NewDisbursement:
        return NewDisbursement(**msgspec.structs.asdict(self))


class RejectRequest(Body):
    reason: str


class PayRequest(Body):
    method: str
    amount_cents: int | None = None
    reference: str = ""


def read_out(value: object, schema: type[Out], **computed: Any) -> Out:
    """A response body: the fields given in `computed`, and every other one read off the attribute of the same
    name of `value` (a domain object)."""
    read = {name: getattr(value, name) for name in schema.__struct_fields__ if name not in computed}
    return schema(**read, **computed)


class FundOut(msgspec.Struct):
    id: str
    name: str
    currency: str
    balance_cents: int
    committed_cents: int
    available_cents: int


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
        return read_out(view.entry, cls, lines=[read_out(line, LineOut) for line in view.lines])


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
    created_at: datetime = msgspec.field(name="at")


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
        return read_out(
            d,
            cls,
            approvals_remaining=remaining,
            approvals=[ApprovalOut(a.approver_id, a.approver_org_id, a.at) for a in approvals],
            payment=read_out(payment, PaymentOut) if payment else None,
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

    @classmethod
    def of(cls, result: FundAudit) -> AuditOut:
        return cls(
            ok=result.ok,
            entries=result.journal.count,
            head_hash=result.journal.head_hash,
            first_bad_entry=result.journal.first_bad_id,
            problem=result.journal.problem or result.events.problem or (result.anchor and result.anchor.problem),
            audit_events=result.events.count,
            audit_head_hash=result.events.head_hash,
            first_bad_event=result.events.first_bad_id,
        )


# The pages' forms: text as typed, parsed by the handler (`parse_money`) or here.
class RequestForm(msgspec.Struct):
    """The request form as typed; every field defaults to empty so a form missing one re-renders with a
    message beside it instead of a bare 400. `idempotency_key` is generated when the form is rendered."""

    fund_id: str = ""
    case_code: str = ""
    category: str = ""
    amount: str = ""
    payee: str = ""
    nights: str = ""
    note: str = ""
    idempotency_key: str = ""

    def values(self) -> dict[str, str]:
        """What was typed, to fill the form again."""
        return msgspec.structs.asdict(self)

    def digest(self) -> str:
        """The request hash stored beside the form's idempotency key (what the request says, not the key)."""
        body = {k: v.strip() for k, v in self.values().items() if k != "idempotency_key"}
        return request_hash(body)

    def parse(self) -> tuple[NewDisbursement | None, dict[str, str]]:
        """The request, or the message for each field that is wrong (in the page's language). Nights typed
        for a category that has none are an error, never silently dropped."""
        errors: dict[str, str] = {}
        if not self.case_code.strip():
            errors["case_code"] = _("Choose a case, or open a new one.")
        if self.category not in CATEGORIES:
            errors["category"] = _("Choose what the money is for.")
        amount_cents = 0
        if not self.amount.strip():
            errors["amount"] = _("Write the amount, like 25 or 25.50.")
        else:
            try:
                amount_cents = parse_money(self.amount)
            except Invalid:
                errors["amount"] = _("Write the amount in dollars, like 25 or 25.50.")
            else:
                if amount_cents <= 0:
                    errors["amount"] = _("The amount must be more than $0.")
        nights: int | None = None
        typed_nights = self.nights.strip()
        if counts_nights(self.category):
            if not typed_nights:
                errors["nights"] = _("A hotel stay needs the number of nights.")
            elif not typed_nights.isdigit() or not 1 <= int(typed_nights) <= NIGHTS_MAX:
                errors["nights"] = _("Nights are a whole number from 1 to %(max)d.", max=NIGHTS_MAX)
            else:
                nights = int(typed_nights)
        elif typed_nights and self.category in CATEGORIES:
            errors["nights"] = _("Only a hotel stay has nights: empty this field or choose Hotel.")
        if len(self.payee) > 200:
            errors["payee"] = _("Keep the payee under 200 characters.")
        if len(self.note) > 1000:
            errors["note"] = _("Keep the note under 1000 characters.")
        if errors:
            return None, errors
        new = NewDisbursement(
            self.fund_id,
            self.case_code.strip(),
            self.category,
            amount_cents,
            self.payee,
            nights=nights,
            note=self.note,
        )
        return new, {}


class RejectForm(msgspec.Struct):
    reason: str = ""


class PayForm(msgspec.Struct):
    amount: str = ""
    reference: str = ""


class RulesForm(msgspec.Struct):
    fund_id: str
    document: str


@dataclass(frozen=True)
class Period:
    """The journal's `from`/`to` filter as typed (to fill the form again) and the UTC bounds it means:
    entries posted at `start` or later and before `end`."""

    typed_start: str
    typed_end: str
    start: datetime | None
    end: datetime | None


def journal_period(
    start: Annotated[str | None, QueryParameter(name="from")] = None,
    end: Annotated[str | None, QueryParameter(name="to")] = None,
) -> Period:
    """Dependency of the journal's handlers (`PERIOD`)."""
    return Period(start or "", end or "", parse_bound(start, end=False), parse_bound(end, end=True))


PERIOD = {"period": Provide(journal_period, sync_to_thread=False)}


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
