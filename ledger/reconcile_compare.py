"""Reconciliation's comparison: both sides of a period in, every difference out. Pure: no session, no
Stripe call (ledger/reconcile.py reads both sides and calls `compare`).

Both sides are compared by Stripe's object ids, in cents of cash effect (a capture is money out, negative
as Stripe signs it; a refund and a donation are money in):
- card transactions posted to the journal against Stripe's issuing transactions of the fund's cards, and
  each against its `issuing_transaction` balance transaction;
- donations posted to the journal against Stripe's `charge` balance transactions of their payment intents.

A difference is `missing_in_journal`, `missing_in_stripe`, `amount_mismatch` or
`missing_balance_transaction`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ledger.stripe_models import CardTransaction, Donation


@dataclass(frozen=True)
class Difference:
    kind: str
    object: str  # issuing_transaction | donation
    stripe_id: str | None
    entry_id: str | None
    journal_cents: int | None
    stripe_cents: int | None
    at: datetime | None
    detail: str = ""


@dataclass
class Reconciliation:
    fund_id: str
    currency: str
    start: datetime
    end: datetime
    journal_cents: int = 0  # cash effect of the Stripe-linked entries of the period
    stripe_cents: int = 0  # cash effect of the fund's Stripe objects of the period
    matched: int = 0
    differences: list[Difference] = field(default_factory=list)
    # Card transactions posted to `expenses:exceptions` (spent after their request was cancelled or
    # rejected): they match Stripe, but someone must look at each one.
    exceptions: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def difference_cents(self) -> int:
        return self.stripe_cents - self.journal_cents

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class IssuingTransaction:
    """Stripe's side of a card transaction; `amount` signed as Stripe signs it (a capture is negative)."""

    id: str
    card_id: str | None
    amount: int
    at: datetime


@dataclass(frozen=True)
class BalanceTransaction:
    id: str
    amount: int


@dataclass(frozen=True)
class Charge:
    """A `charge` balance transaction, with the payment intent its charge belongs to and the fund its
    metadata names (when Stripe sent the charge itself along)."""

    balance_transaction_id: str
    amount: int
    at: datetime
    payment_intent_id: str | None
    fund_id: str | None


def cash_effect(posted: CardTransaction) -> int:
    """A posted card transaction in Stripe's sign."""
    return -posted.amount_cents if posted.kind == "capture" else posted.amount_cents


def compare_card_transactions(
    report: Reconciliation,
    issuing: Iterable[IssuingTransaction],
    balance_of: Mapping[str, BalanceTransaction],
    card_ids: set[str],
    posted: Mapping[str, CardTransaction],
) -> None:
    """Stripe's issuing transactions of the fund's cards (and their balance transactions, by issuing
    transaction id) against the card transactions the journal posted."""
    seen: set[str] = set()
    for txn in issuing:
        if txn.card_id not in card_ids:
            continue  # another fund's card, or no card of ours
        seen.add(txn.id)
        if report.covers(txn.at):
            report.stripe_cents += txn.amount
        ours = posted.get(txn.id)
        if ours is None:
            if report.covers(txn.at):
                report.differences.append(
                    Difference("missing_in_journal", "issuing_transaction", txn.id, None, None, txn.amount, txn.at)
                )
            continue
        if report.covers(ours.created_at):
            _compare_posted(report, txn, ours, balance_of.get(txn.id))
    for ours in posted.values():
        if ours.id in seen or not report.covers(ours.created_at):
            continue
        journal = cash_effect(ours)
        report.journal_cents += journal
        report.differences.append(
            Difference(
                "missing_in_stripe", "issuing_transaction", ours.id, ours.entry_id, journal, None, ours.created_at
            )
        )


def _compare_posted(
    report: Reconciliation, txn: IssuingTransaction, ours: CardTransaction, balance: BalanceTransaction | None
) -> None:
    journal = cash_effect(ours)
    report.journal_cents += journal
    if journal != txn.amount:
        report.differences.append(
            Difference("amount_mismatch", "issuing_transaction", txn.id, ours.entry_id, journal, txn.amount, txn.at)
        )
    else:
        report.matched += 1
    if balance is None:
        report.differences.append(
            Difference(
                "missing_balance_transaction", "issuing_transaction", txn.id, ours.entry_id, journal, None, txn.at
            )
        )
    elif balance.amount != txn.amount:
        report.differences.append(
            Difference(
                "amount_mismatch",
                "issuing_transaction",
                txn.id,
                ours.entry_id,
                journal,
                balance.amount,
                txn.at,
                detail=f"balance transaction {balance.id}",
            )
        )


def compare_donations(report: Reconciliation, charges: Iterable[Charge], donations: Mapping[str, Donation]) -> None:
    """Stripe's charges of the fund (by payment intent or by metadata) against the donations the journal
    posted (by payment intent)."""
    seen: set[str] = set()
    for charge in charges:
        intent = charge.payment_intent_id
        donation = donations.get(intent or "")
        if donation is None and charge.fund_id != report.fund_id:
            continue
        if report.covers(charge.at):
            report.stripe_cents += charge.amount
        if donation is None:
            if report.covers(charge.at):
                report.differences.append(
                    Difference(
                        "missing_in_journal",
                        "donation",
                        intent,
                        None,
                        None,
                        charge.amount,
                        charge.at,
                        detail=charge.balance_transaction_id,
                    )
                )
            continue
        seen.add(intent or "")
        if not report.covers(donation.paid_at or charge.at):
            continue
        report.journal_cents += donation.amount_cents
        if donation.amount_cents != charge.amount:
            report.differences.append(
                Difference(
                    "amount_mismatch",
                    "donation",
                    intent,
                    donation.entry_id,
                    donation.amount_cents,
                    charge.amount,
                    charge.at,
                    detail=charge.balance_transaction_id,
                )
            )
        else:
            report.matched += 1
    for intent, donation in donations.items():
        if intent in seen or donation.paid_at is None or not report.covers(donation.paid_at):
            continue
        report.journal_cents += donation.amount_cents
        report.differences.append(
            Difference(
                "missing_in_stripe",
                "donation",
                intent,
                donation.entry_id,
                donation.amount_cents,
                None,
                donation.paid_at,
            )
        )


def list_exceptions(report: Reconciliation, posted: Mapping[str, CardTransaction]) -> None:
    """The period's card transactions posted to the exceptions account, as `card_exception` rows."""
    for ours in posted.values():
        if ours.exception and report.covers(ours.created_at):
            report.exceptions.append(
                Difference(
                    "card_exception",
                    "issuing_transaction",
                    ours.id,
                    ours.entry_id,
                    cash_effect(ours),
                    None,
                    ours.created_at,
                    ours.disbursement_id,
                )
            )


def sort_differences(report: Reconciliation) -> Reconciliation:
    report.differences.sort(key=lambda d: (d.at or report.start, d.stripe_id or ""))
    report.exceptions.sort(key=lambda d: (d.at or report.start, d.stripe_id or ""))
    return report
