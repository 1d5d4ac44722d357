"""Tables of card payments and Stripe: cardholders, virtual cards, authorizations, card transactions,
donations through Checkout, and every Stripe event received.

Money stays in the journal (ledger/models.py); these rows link each journal entry to the Stripe object it
came from, so a retry or a second delivery finds the row and posts nothing, and reconciliation can compare
both sides. Card numbers and CVCs are never stored: only the card id and its last four digits.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Column, Index, false
from sqlmodel import Field, SQLModel

from ledger.models import new_id
from ledger.timeutil import UTCDateTime, utcnow


class CardStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Cardholder(SQLModel, table=True):
    """The Stripe cardholder of an organisation: created once, reused for every card of its workers.
    Cards go to the requesting organisation, never to the person helped (who stays a case code)."""

    __tablename__ = "ledger_stripe_cardholder"

    org_id: str = Field(primary_key=True)
    stripe_cardholder_id: str = Field(unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Card(SQLModel, table=True):
    """A virtual card paying one approved disbursement. While it is open the disbursement stays approved
    and keeps its pending transfer: `limit_cents - captured_cents` (never below zero) is still pending."""

    __tablename__ = "ledger_card"
    __table_args__ = (
        CheckConstraint("limit_cents > 0", name="ck_ledger_card_limit_positive"),
        CheckConstraint("status IN ('open', 'closed')", name="ck_ledger_card_status"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    disbursement_id: str = Field(foreign_key="ledger_disbursement.id", unique=True)
    fund_id: str = Field(foreign_key="ledger_fund.id", index=True)
    stripe_card_id: str = Field(unique=True)
    stripe_cardholder_id: str
    last4: str
    currency: str
    category: str
    limit_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Captures minus refunds, as posted to the journal.
    captured_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    status: str = CardStatus.OPEN
    closed_reason: str = ""
    issued_by_user_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Our own validity: the authorization answer declines after it and the sweeper closes the card.
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class CardAuthorization(SQLModel, table=True):
    """Our answer to one `issuing_authorization.request`. `held_cents` is what an approved, not yet
    captured authorization still holds against the card (zero once captured, reversed or declined)."""

    __tablename__ = "ledger_card_authorization"

    id: str = Field(primary_key=True)  # Stripe's authorization id
    card_id: str | None = Field(default=None, foreign_key="ledger_card.id", index=True)
    stripe_card_id: str
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    merchant_category: str = ""
    approved: bool
    reason: str
    held_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    status: str = "pending"  # pending | closed | reversed | declined
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class CardTransaction(SQLModel, table=True):
    """One Stripe issuing transaction (capture or refund) and the journal entry that posted it."""

    __tablename__ = "ledger_card_transaction"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="ck_ledger_card_txn_positive"),
        Index("ix_ledger_card_txn_fund_created", "fund_id", "created_at"),
    )

    id: str = Field(primary_key=True)  # Stripe's issuing transaction id
    card_id: str = Field(foreign_key="ledger_card.id", index=True)
    fund_id: str = Field(foreign_key="ledger_fund.id")
    disbursement_id: str = Field(foreign_key="ledger_disbursement.id")
    kind: str  # capture | refund
    # Positive; the kind says which way the money went (Stripe signs captures negative).
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    authorization_id: str | None = None
    balance_transaction_id: str | None = None
    entry_id: str = Field(foreign_key="ledger_journal_entry.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # Posted to `expenses:exceptions`: the card spent after its request was cancelled or rejected.
    exception: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, default=False, server_default=false())
    )


class Donation(SQLModel, table=True):
    """A donation through Stripe Checkout: pending when the session is created, posted as a deposit (once)
    when `checkout.session.completed` arrives."""

    __tablename__ = "ledger_donation"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="ck_ledger_donation_positive"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    fund_id: str = Field(foreign_key="ledger_fund.id", index=True)
    checkout_session_id: str | None = Field(default=None, unique=True)
    payment_intent_id: str | None = None
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    status: str = "pending"  # pending | paid | expired
    entry_id: str | None = Field(default=None, foreign_key="ledger_journal_entry.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    paid_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class StripeEvent(SQLModel, table=True):
    """Every Stripe event received, for audit. The primary key is Stripe's event id: the row is inserted in
    the same transaction as the event's postings, so a retried or racing delivery is processed once."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True)
    type: str = Field(index=True)
    api_version: str = ""
    livemode: bool = False
    created: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    outcome: str = "processed"  # processed | ignored | failed
    result: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
