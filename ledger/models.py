"""Tables of the emergency fund.

Invariants the database itself keeps (so a bug in our code cannot silently break them):
- a journal line has a positive amount and a side of `debit` or `credit`;
- a journal entry's `total_debits_cents` equals its `total_credits_cents` (the code fills both from the
  lines and checks them against the lines in the same transaction);
- an account balance never has more committed than it holds (`balance_cents >= committed_cents >= 0`),
  which is what makes "the fund can never promise more than it holds" true at every commit;
- one idempotency key per caller per kind of write (unique constraints).

Balances are kept in the account's normal side (assets and expenses grow with debits, income with
credits), so every balance is a non-negative number of cents.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Date, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.timeutil import UTCDateTime, utcnow


def new_id() -> str:
    return uuid.uuid4().hex


class Category(StrEnum):
    TRAVEL_LOCAL = "travel_local"
    TRAVEL_INTERPROVINCIAL = "travel_interprovincial"
    TRAVEL_INTERNATIONAL = "travel_international"
    HOTEL = "hotel"
    CALLING_CARD = "calling_card"
    BASIC_NEEDS = "basic_needs"
    INTERPRETATION = "interpretation"
    OTHER = "other"


CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)


class Status(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class DepositSource(StrEnum):
    GRANT = "grant"
    DONATION = "donation"
    TRANSFER_IN = "transfer_in"


class AccountKind(StrEnum):
    ASSET = "asset"
    INCOME = "income"
    EXPENSE = "expense"


# Which side makes an account of this kind grow.
NORMAL_SIDE = {AccountKind.ASSET: "debit", AccountKind.EXPENSE: "debit", AccountKind.INCOME: "credit"}

CASH_ACCOUNT = "assets:cash"
# Money a card spent after its request was cancelled or rejected (a late capture on a closed card): it left
# the fund, so it posts, but to this account, never as the request's payment; reconciliation lists it.
EXCEPTIONS_ACCOUNT = "expenses:exceptions"


class Case(SQLModel, table=True):
    """A pseudonymous case: a generated code and the organisation that leads it. Nothing about the person."""

    __tablename__ = "ledger_case"
    __table_args__ = (
        UniqueConstraint("created_by_user_id", "idempotency_key", name="uq_ledger_case_idempotency"),
        Index("ix_ledger_case_creator_created", "created_by_user_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    code: str = Field(unique=True, index=True)
    lead_org_id: str = Field(index=True)
    created_by_user_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    idempotency_key: str | None = None
    request_hash: str | None = None
    # A closed case takes no new fund request and no new hold (ledger/cases.py `close_case`).
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    closed_by_user_id: str | None = None


class Fund(SQLModel, table=True):
    """A fund, and the heads of its two hash chains.

    The fund row is the lock every ledger write takes first (SELECT ... FOR UPDATE), so appends to a
    fund's chains are serialised and lock order is always fund → disbursement → balances.
    """

    __tablename__ = "ledger_fund"

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(unique=True)
    currency: str = "CAD"
    entry_count: int = 0
    head_hash: str = ""
    audit_count: int = 0
    audit_head_hash: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Account(SQLModel, table=True):
    __tablename__ = "ledger_account"
    __table_args__ = (UniqueConstraint("fund_id", "code", name="uq_ledger_account_fund_code"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    fund_id: str = Field(foreign_key="ledger_fund.id", index=True)
    code: str  # e.g. assets:cash, income:grant, expenses:hotel
    kind: AccountKind


class AccountBalance(SQLModel, table=True):
    """The running balance of an account; always equal to the sum of its lines (checked by `check_books`)."""

    __tablename__ = "ledger_account_balance"
    __table_args__ = (
        CheckConstraint("committed_cents >= 0", name="ck_ledger_balance_committed_nonneg"),
        CheckConstraint("balance_cents >= committed_cents", name="ck_ledger_balance_covers_committed"),
    )

    account_id: str = Field(foreign_key="ledger_account.id", primary_key=True)
    fund_id: str = Field(foreign_key="ledger_fund.id", index=True)
    balance_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # Pending transfers (approved, not yet paid). Only the cash account carries commitments.
    committed_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class JournalEntry(SQLModel, table=True):
    """One balanced entry; append-only, hash-chained per fund (`seq` 1, 2, 3 ... with `prev_hash`)."""

    __tablename__ = "ledger_journal_entry"
    __table_args__ = (
        UniqueConstraint("fund_id", "seq", name="uq_ledger_entry_fund_seq"),
        UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_ledger_entry_idempotency"),
        CheckConstraint("total_debits_cents = total_credits_cents", name="ck_ledger_entry_balanced"),
        CheckConstraint("total_debits_cents > 0", name="ck_ledger_entry_nonzero"),
        Index("ix_ledger_entry_fund_posted", "fund_id", "posted_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    fund_id: str = Field(foreign_key="ledger_fund.id")
    seq: int
    kind: str  # deposit | payment
    posted_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    memo: str = ""
    disbursement_id: str | None = Field(default=None, index=True)
    total_debits_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_credits_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    prev_hash: str
    hash: str
    idempotency_user_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


class JournalLine(SQLModel, table=True):
    __tablename__ = "ledger_journal_line"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="ck_ledger_line_positive"),
        CheckConstraint("side IN ('debit', 'credit')", name="ck_ledger_line_side"),
        UniqueConstraint("entry_id", "position", name="uq_ledger_line_position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entry_id: str = Field(foreign_key="ledger_journal_entry.id", index=True)
    position: int
    account_id: str = Field(foreign_key="ledger_account.id", index=True)
    side: str
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class RuleSetVersion(SQLModel, table=True):
    """A fund's approval rules as a JSON document; a save adds a version, old ones are kept."""

    __tablename__ = "ledger_rule_set"
    __table_args__ = (UniqueConstraint("fund_id", "version", name="uq_ledger_rule_set_version"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    fund_id: str = Field(foreign_key="ledger_fund.id", index=True)
    version: int
    document: dict = Field(sa_column=Column(JSON, nullable=False))
    created_by_user_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # In force only once a second person approved it (ledger/rulesets.py); until then the previous one rules.
    created_by_org_id: str | None = None
    approved_by_user_id: str | None = None
    approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class Disbursement(SQLModel, table=True):
    __tablename__ = "ledger_disbursement"
    __table_args__ = (
        UniqueConstraint("requester_id", "idempotency_key", name="uq_ledger_disbursement_idempotency"),
        CheckConstraint("amount_cents > 0", name="ck_ledger_disbursement_positive"),
        CheckConstraint("committed_cents >= 0 AND paid_cents >= 0", name="ck_ledger_disbursement_nonneg"),
        Index("ix_ledger_disbursement_fund_status", "fund_id", "status"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    fund_id: str = Field(foreign_key="ledger_fund.id")
    case_id: str = Field(foreign_key="ledger_case.id", index=True)
    case_code: str
    requester_id: str = Field(index=True)
    requester_org_id: str
    category: str
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    payee: str = ""
    nights: int | None = None
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Status.PENDING_APPROVAL
    # The decision and what it was made from, so it can be replayed against any rule set.
    rule: str
    approvals_needed: int
    needs_other_org: bool = False
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Which item (its position) or the total (`item` None) each reason came from: {"reason", "item"}.
    decided_by: list[dict] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))
    facts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rule_set_id: str
    rule_set_version: int
    committed_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    paid_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    rejection_reason: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    paid_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    idempotency_key: str | None = None
    request_hash: str | None = None
    # The bed the request serves (travel to it): a hold or a placement of `beds`, by id only; the web shell
    # checks the link against the beds (the two domains never import each other).
    hold_id: str | None = None
    placement_id: str | None = None
    # Recurring travel (ledger/trips.py): approved once for `amount_cents` in all and at most `trips_max`
    # trips, each drawn without a new approval; `paid_cents` is what the trips drew so far.
    trips_max: int | None = None
    trips_drawn: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0, server_default="0"))


class DisbursementItem(SQLModel, table=True):
    """One line of a request: several items under one case are decided, approved and paid together. The
    request keeps their total (`amount_cents`), the category of its largest item and its hotel nights."""

    __tablename__ = "ledger_disbursement_item"
    __table_args__ = (
        UniqueConstraint("disbursement_id", "position", name="uq_ledger_disbursement_item_position"),
        CheckConstraint("amount_cents > 0", name="ck_ledger_disbursement_item_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    disbursement_id: str = Field(foreign_key="ledger_disbursement.id", index=True)
    position: int
    category: str
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    nights: int | None = None
    payee: str = ""
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Approval(SQLModel, table=True):
    __tablename__ = "ledger_approval"
    # Distinct approvers, enforced by the database as well as by the rules.
    __table_args__ = (
        UniqueConstraint("disbursement_id", "approver_id", name="uq_ledger_approval_approver"),
        UniqueConstraint("approver_id", "idempotency_key", name="uq_ledger_approval_idempotency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    disbursement_id: str = Field(foreign_key="ledger_disbursement.id", index=True)
    approver_id: str
    approver_org_id: str
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    idempotency_key: str | None = None
    request_hash: str | None = None


class Payment(SQLModel, table=True):
    """How a disbursement was paid. One per disbursement; card payments keep the issuer's card id."""

    __tablename__ = "ledger_payment"
    __table_args__ = (
        UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_ledger_payment_idempotency"),
        CheckConstraint("amount_cents > 0", name="ck_ledger_payment_positive"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    disbursement_id: str = Field(foreign_key="ledger_disbursement.id", unique=True)
    method: str  # manual | stripe_card
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    reference: str = ""
    external_id: str | None = None
    entry_id: str = Field(foreign_key="ledger_journal_entry.id")
    actor_user_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    idempotency_user_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


class AuditEvent(SQLModel, table=True):
    """Approvals, rejections, payments and rule changes; append-only, hash-chained per fund like the journal."""

    __tablename__ = "ledger_audit_event"
    __table_args__ = (UniqueConstraint("fund_id", "seq", name="uq_ledger_audit_fund_seq"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    fund_id: str = Field(foreign_key="ledger_fund.id")
    seq: int
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    action: str
    actor_user_id: str | None = None
    disbursement_id: str | None = None
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str
    hash: str


class Trip(SQLModel, table=True):
    """One trip drawn against an approved recurring travel request: posted like a payment (its own journal
    entry), numbered 1, 2, 3 ... per request."""

    __tablename__ = "ledger_trip"
    __table_args__ = (
        UniqueConstraint("disbursement_id", "seq", name="uq_ledger_trip_seq"),
        UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_ledger_trip_idempotency"),
        CheckConstraint("amount_cents > 0", name="ck_ledger_trip_positive"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    disbursement_id: str = Field(foreign_key="ledger_disbursement.id", index=True)
    seq: int
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    trip_date: date = Field(sa_column=Column(Date, nullable=False))
    entry_id: str = Field(foreign_key="ledger_journal_entry.id")
    actor_user_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    idempotency_user_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
