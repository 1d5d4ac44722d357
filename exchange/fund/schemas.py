"""Request and response bodies of the cases and ledger API, the pages' forms, and the journal's date filter.

API bodies refuse unknown fields (400), which is also how personal data (a name, an immigration status) is
kept out: there is no field to put it in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
from litestar.di import Provide
from litestar.params import QueryParameter

from exchange.web.forms import parse_money, request_hash
from exchange.web.i18n import gettext as _
from exchange.web.schemas import Body
from ledger.disbursements import ITEMS_MAX, NIGHTS_MAX, NewDisbursement, NewItem
from ledger.errors import Invalid
from ledger.journal import EntryView
from ledger.models import CATEGORIES, Approval, Disbursement, DisbursementItem, Payment
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


class ItemIn(Body):
    """One item of a request (API.md: `items: [{"category", "amount_cents", "nights"?}]`)."""

    category: str
    amount_cents: int
    nights: int | None = None
    payee: str = ""
    note: str = ""


class DisbursementRequest(Body):
    """One item told by `category`, `amount_cents`, `nights` and `payee` (as before requests had items), or
    `items`: 1 to 10 items under one case, decided together."""

    fund_id: str
    case_code: str
    currency: str
    category: str | None = None
    amount_cents: int | None = None
    payee: str = ""
    nights: int | None = None
    note: str = ""
    items: list[ItemIn] | None = None
    # The hold or placement the request serves (travel to a bed), and for recurring travel the number of trips
    # the total covers.
    hold_id: str | None = None
    placement_id: str | None = None
    trips: int | None = None

    def new_disbursement(self) -> NewDisbursement:
        """The request, or Invalid with the `path` of what is missing or extra (nothing is written)."""
        links = {"hold_id": self.hold_id, "placement_id": self.placement_id, "trips": self.trips}
        return dataclasses.replace(self._new_disbursement(), **links)

    def _new_disbursement(self) -> NewDisbursement:
        if self.items is None:
            missing = [name for name in ("category", "amount_cents") if getattr(self, name) is None]
            if missing:
                raise Invalid(
                    "items_required",
                    "Send `items`, or one item as `category` and `amount_cents`.",
                    path=missing[0],
                )
            return NewDisbursement(
                self.fund_id,
                self.case_code,
                str(self.category),
                int(self.amount_cents or 0),
                self.payee,
                currency=self.currency,
                nights=self.nights,
                note=self.note,
            )
        extra = [name for name in ("category", "amount_cents", "nights") if getattr(self, name) is not None]
        if extra or self.payee:
            raise Invalid(
                "items_and_item",
                "Send either `items` or one item's `category`, `amount_cents` and `payee`, not both.",
                path=(extra or ["payee"])[0],
            )
        if not 1 <= len(self.items) <= ITEMS_MAX:
            raise Invalid("invalid_items", f"A request holds 1 to {ITEMS_MAX} items.", path="items")
        items = tuple(NewItem(i.category, i.amount_cents, i.nights, i.payee, i.note) for i in self.items)
        return NewDisbursement(self.fund_id, self.case_code, currency=self.currency, note=self.note, items=items)


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


class ItemOut(msgspec.Struct):
    category: str
    amount_cents: int
    nights: int | None
    payee: str
    note: str


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
    # The request's items; `category` above is its largest item's, `amount_cents` their total.
    items: list[ItemOut] = msgspec.field(default_factory=list)
    # Which item (its position) or the request as a whole (`item` null) each reason came from.
    decided_by: list[dict[str, Any]] = msgspec.field(default_factory=list)
    hold_id: str | None = None
    placement_id: str | None = None
    # The bed the request serves, as far as every reader may know it: its facility's city, never the address.
    serves: ServesOut | None = None
    # Recurring travel: trips allowed and drawn; `paid_cents` is what they drew.
    trips_max: int | None = None
    trips_drawn: int = 0

    @classmethod
    def of(
        cls,
        d: Disbursement,
        approvals: list[Approval],
        payment: Payment | None = None,
        items: list[DisbursementItem] | None = None,
        serves: ServesOut | None = None,
    ) -> DisbursementOut:
        remaining = max(d.approvals_needed - len(approvals), 0) if d.status == "pending_approval" else 0
        return read_out(
            d,
            cls,
            approvals_remaining=remaining,
            approvals=[ApprovalOut(a.approver_id, a.approver_org_id, a.at) for a in approvals],
            payment=read_out(payment, PaymentOut) if payment else None,
            items=[read_out(i, ItemOut) for i in items or []],
            decided_by=list(d.decided_by or []),
            serves=serves,
        )


class ServesOut(msgspec.Struct):
    """The bed a request serves: a hold or a placement, and the city and province of its facility."""

    kind: str
    id: str
    city: str
    province: str


class TripRequest(Body):
    """One trip drawn against an approved recurring travel request."""

    amount_cents: int
    trip_date: date = msgspec.field(name="date")


class TripOut(msgspec.Struct):
    id: str
    disbursement_id: str
    seq: int
    amount_cents: int
    trip_date: date = msgspec.field(name="date")
    entry_id: str
    at: datetime
    trips_drawn: int
    trips_max: int
    paid_cents: int
    remaining_cents: int
    status: str


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
ITEM_FIELDS = ("category", "amount", "nights", "payee", "note")


def item_field(name: str, row: int) -> str:
    """The form's name of an item's field: the first row keeps the plain names (`amount`), the others carry
    their row (`amount-1`), so a form of one item reads as before items existed."""
    return name if row == 0 else f"{name}-{row}"


def empty_row() -> dict[str, str]:
    return dict.fromkeys(ITEM_FIELDS, "")


class RequestForm(msgspec.Struct):
    """The request form as typed; every field defaults to empty so a form missing one re-renders with a
    message beside it instead of a bare 400. `idempotency_key` is generated when the form is rendered.
    `rows`: the items as typed, in the order shown (1 to ITEMS_MAX)."""

    fund_id: str = ""
    case_code: str = ""
    idempotency_key: str = ""
    rows: list[dict[str, str]] = msgspec.field(default_factory=lambda: [empty_row()])

    @classmethod
    def read(cls, form: Any) -> RequestForm:
        """From the posted form (a mapping of names to text): the rows present, renumbered from 0."""

        def text(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        rows = []
        for row in range(ITEMS_MAX * 3):  # rows removed in the browser leave gaps in the numbers
            names = {f: item_field(f, row) for f in ITEM_FIELDS}
            if row == 0 or any(n in form for n in names.values()):
                rows.append({f: text(n) for f, n in names.items()})
            if len(rows) == ITEMS_MAX:
                break
        return cls(text("fund_id"), text("case_code"), text("idempotency_key"), rows)

    def values(self) -> dict[str, Any]:
        """What was typed, to fill the form again."""
        return {
            "fund_id": self.fund_id,
            "case_code": self.case_code,
            "idempotency_key": self.idempotency_key,
            "rows": [dict(r) for r in self.rows],
        }

    def digest(self) -> str:
        """The request hash stored beside the form's idempotency key (what the request says, not the key)."""
        body: dict[str, Any] = {"fund_id": self.fund_id.strip(), "case_code": self.case_code.strip()}
        for row, typed in enumerate(self.rows):
            body.update({item_field(f, row): v.strip() for f, v in typed.items()})
        return request_hash(body)

    def added(self) -> RequestForm:
        """The same form with one more empty item (at most ITEMS_MAX)."""
        rows = [*self.rows, empty_row()] if len(self.rows) < ITEMS_MAX else self.rows
        return msgspec.structs.replace(self, rows=rows)

    def removed(self, row: int) -> RequestForm:
        """The same form without item `row` (the first stays: a request has one item at least)."""
        rows = [r for i, r in enumerate(self.rows) if i != row or row == 0]
        return msgspec.structs.replace(self, rows=rows)

    def parse(self) -> tuple[NewDisbursement | None, dict[str, str]]:
        """The request, or the message for each field that is wrong (in the page's language). Nights typed
        for a category that has none are an error, never silently dropped. An item left wholly empty (not the
        first) is no item."""
        errors: dict[str, str] = {}
        if not self.case_code.strip():
            errors["case_code"] = _("Choose a case, or open a new one.")
        items: list[NewItem] = []
        for row, typed in enumerate(self.rows):
            if row > 0 and not any(v.strip() for v in typed.values()):
                continue
            item = _parse_item(typed, row, errors)
            if item is not None:
                items.append(item)
        if errors:
            return None, errors
        if len(items) == 1:
            # One item: the request as before items existed, its note the request's.
            only = items[0]
            new = NewDisbursement(
                self.fund_id,
                self.case_code.strip(),
                only.category,
                only.amount_cents,
                only.payee,
                nights=only.nights,
                note=only.note,
            )
            return new, {}
        return NewDisbursement(self.fund_id, self.case_code.strip(), items=tuple(items)), {}


def _parse_item(typed: dict[str, str], row: int, errors: dict[str, str]) -> NewItem | None:
    """One row of the form, or None with its messages added to `errors` under the row's field names."""
    found: dict[str, str] = {}
    category = typed.get("category", "")
    if category not in CATEGORIES:
        found["category"] = _("Choose what the money is for.")
    amount_cents = 0
    amount = typed.get("amount", "").strip()
    if not amount:
        found["amount"] = _("Write the amount, like 25 or 25.50.")
    else:
        try:
            amount_cents = parse_money(amount)
        except Invalid:
            found["amount"] = _("Write the amount in dollars, like 25 or 25.50.")
        else:
            if amount_cents <= 0:
                found["amount"] = _("The amount must be more than $0.")
    nights: int | None = None
    typed_nights = typed.get("nights", "").strip()
    if counts_nights(category):
        if not typed_nights:
            found["nights"] = _("A hotel stay needs the number of nights.")
        elif not typed_nights.isdigit() or not 1 <= int(typed_nights) <= NIGHTS_MAX:
            found["nights"] = _("Nights are a whole number from 1 to %(max)d.", max=NIGHTS_MAX)
        else:
            nights = int(typed_nights)
    elif typed_nights and category in CATEGORIES:
        found["nights"] = _("Only a hotel stay has nights: empty this field or choose Hotel.")
    payee, note = typed.get("payee", ""), typed.get("note", "")
    if len(payee) > 200:
        found["payee"] = _("Keep the payee under 200 characters.")
    if len(note) > 1000:
        found["note"] = _("Keep the note under 1000 characters.")
    if found:
        errors.update({item_field(name, row): message for name, message in found.items()})
        return None
    return NewItem(category, amount_cents, nights, payee, note)


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
