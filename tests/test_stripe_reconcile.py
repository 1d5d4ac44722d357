"""Reconciliation lists every difference between the journal and Stripe, with totals: here a capture the
journal never received and a capture posted with another amount than Stripe's."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta

import httpx
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import async_sessionmaker

from exchange.cli import main
from ledger.reconcile_compare import (
    BalanceTransaction,
    Charge,
    IssuingTransaction,
    Reconciliation,
    compare_card_transactions,
    compare_donations,
    sort_differences,
)
from ledger.stripe_models import CardTransaction, Donation
from tests.conftest import Network
from tests.fakestripe import FakeStripe
from tests.stripe_support import (
    donate,
    fixture_billing_env,  # noqa: F401  (fixture)
    fixture_fake,  # noqa: F401  (fixture)
    fixture_http,  # noqa: F401  (fixture)
    fixture_stripe_server,  # noqa: F401  (fixture)
    issued_card,
)
from tests.test_ledger_support import fixture_fund_id  # noqa: F401  (fixture)

GROCERY = "grocery_stores_supermarkets"


def _silently(fake: FakeStripe, action: object) -> dict:
    """Let Stripe do something without delivering its events to us."""
    url, fake.webhook_url = fake.webhook_url, None
    try:
        return action()  # type: ignore[operator]
    finally:
        fake.webhook_url = url


async def test_reconciliation_lists_a_missing_and_a_mismatched_transaction(
    http: httpx.AsyncClient,
    network: Network,
    fund_id: str,
    fake: FakeStripe,
    database_url: str,
    sessionmaker: async_sessionmaker,
) -> None:
    _, card = await issued_card(http, network, fund_id, category="basic_needs", amount_cents=10_000)
    matched = fake.capture(fake.request_authorization(card["id"], 3_000, merchant_category=GROCERY).id)
    # Missing in the journal: Stripe captured, its events never reached us.
    auth = fake.request_authorization(card["id"], 2_000, merchant_category=GROCERY)
    missing = _silently(fake, lambda: fake.capture(auth.id))
    # Mismatched: the journal posted 10.00 for a capture Stripe booked at 15.00.
    auth = fake.request_authorization(card["id"], 1_500, merchant_category=GROCERY)
    mismatched = _silently(fake, lambda: fake.capture(auth.id))
    wrong = copy.deepcopy(mismatched)
    wrong["amount"] = -1_000
    assert fake.deliver(fake.build_event("issuing_transaction.created", wrong)).status_code == 200
    # A donation that matches.
    assert (await donate(http, fund_id, "40")).status_code == 200
    fake.complete_checkout(fake.checkout_sessions[0]["id"])

    today = datetime.now(UTC).date()
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    answer = await http.get(
        f"/api/v1/funds/{fund_id}/reconciliation", params=period, headers=network["auditor"].headers
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    differences = {(d["kind"], d["stripe_id"]): d for d in report["differences"]}
    assert set(differences) == {("missing_in_journal", missing["id"]), ("amount_mismatch", mismatched["id"])}
    assert differences[("missing_in_journal", missing["id"])]["stripe_cents"] == -2_000
    assert differences[("missing_in_journal", missing["id"])]["journal_cents"] is None
    assert differences[("amount_mismatch", mismatched["id"])]["journal_cents"] == -1_000
    assert differences[("amount_mismatch", mismatched["id"])]["stripe_cents"] == -1_500
    assert report["matched"] == 2  # the first capture and the donation
    assert report["stripe_cents"] == -3_000 - 2_000 - 1_500 + 4_000
    assert report["journal_cents"] == -3_000 - 1_000 + 4_000
    assert report["difference_cents"] == -2_500 and report["ok"] is False
    assert matched["id"] not in {d["stripe_id"] for d in report["differences"]}
    assert (
        await http.get(f"/api/v1/funds/{fund_id}/reconciliation", headers=network["worker"].headers)
    ).status_code == 403

    page = await http.get("/stripe/reconcile", params={"fund": fund_id, **period}, headers=network["auditor"].headers)
    assert page.status_code == 200, page.text
    assert missing["id"] in page.text and mismatched["id"] in page.text and 'id="totals"' in page.text

    # The same from the command line; exit 1 because there are differences.
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": fake.secret_key,
        "STRIPE_API_BASE": fake.api_base,
    }
    args = ["ledger", "reconcile", "--fund", fund_id, "--from", period["from"], "--to", period["to"]]
    result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("missing_in_journal") and missing["id"] in line for line in lines)
    assert any(line.startswith("amount_mismatch") and mismatched["id"] in line for line in lines)
    assert lines[-1] == "totals (cents): journal 0 stripe -2500 difference -2500; 2 matched, 2 differences"


# The comparison alone (ledger/reconcile_compare.py): plain values in, differences out, no database or Stripe.
START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 4, 1, tzinfo=UTC)
INSIDE = datetime(2025, 3, 10, tzinfo=UTC)
BEFORE = datetime(2025, 2, 28, 23, tzinfo=UTC)


def _posted(txn_id: str, kind: str, cents: int, at: datetime = INSIDE) -> CardTransaction:
    return CardTransaction(
        id=txn_id,
        card_id="card_row",
        fund_id="fund_1",
        disbursement_id="d_1",
        kind=kind,
        amount_cents=cents,
        currency="CAD",
        entry_id=f"entry_{txn_id}",
        created_at=at,
    )


def _report() -> Reconciliation:
    return Reconciliation("fund_1", "CAD", START, END)


def test_card_transactions_are_compared_by_id_in_stripe_sign() -> None:
    report = _report()
    issuing = [
        IssuingTransaction("ipi_match", "ic_ours", -3_000, INSIDE),
        IssuingTransaction("ipi_refund", "ic_ours", 500, INSIDE),
        IssuingTransaction("ipi_unposted", "ic_ours", -2_000, INSIDE),
        IssuingTransaction("ipi_other", "ic_other_fund", -9_999, INSIDE),
        IssuingTransaction("ipi_wrong", "ic_ours", -1_500, INSIDE),
        IssuingTransaction("ipi_no_balance", "ic_ours", -100, INSIDE),
        IssuingTransaction("ipi_early", "ic_ours", -700, BEFORE),
    ]
    balance = {
        "ipi_match": BalanceTransaction("txn_1", -3_000),
        "ipi_refund": BalanceTransaction("txn_2", 400),
        "ipi_wrong": BalanceTransaction("txn_3", -1_500),
        "ipi_early": BalanceTransaction("txn_4", -700),
    }
    posted = {
        t.id: t
        for t in (
            _posted("ipi_match", "capture", 3_000),
            _posted("ipi_refund", "refund", 500),
            _posted("ipi_wrong", "capture", 1_000),
            _posted("ipi_no_balance", "capture", 100),
            _posted("ipi_only_ours", "capture", 800),
            _posted("ipi_early", "capture", 700, at=BEFORE),
        )
    }
    compare_card_transactions(report, issuing, balance, {"ic_ours"}, posted)
    found = {(d.kind, d.stripe_id, d.journal_cents, d.stripe_cents) for d in sort_differences(report).differences}
    assert found == {
        ("amount_mismatch", "ipi_refund", 500, 400),  # the balance transaction disagrees
        ("missing_in_journal", "ipi_unposted", None, -2_000),
        ("amount_mismatch", "ipi_wrong", -1_000, -1_500),
        ("missing_balance_transaction", "ipi_no_balance", -100, None),
        ("missing_in_stripe", "ipi_only_ours", -800, None),
    }
    assert report.matched == 3  # match, refund and no_balance agree with Stripe's transaction
    assert report.stripe_cents == -3_000 + 500 - 2_000 - 1_500 - 100
    assert report.journal_cents == -3_000 + 500 - 1_000 - 100 - 800
    assert report.difference_cents == report.stripe_cents - report.journal_cents and not report.ok


def test_donations_are_compared_by_payment_intent_or_the_fund_in_metadata() -> None:
    report = _report()
    paid = Donation(fund_id="fund_1", amount_cents=4_000, currency="CAD", payment_intent_id="pi_1", paid_at=INSIDE)
    short = Donation(fund_id="fund_1", amount_cents=2_000, currency="CAD", payment_intent_id="pi_2", paid_at=INSIDE)
    unseen = Donation(fund_id="fund_1", amount_cents=900, currency="CAD", payment_intent_id="pi_3", paid_at=INSIDE)
    charges = [
        Charge("txn_a", 4_000, INSIDE, "pi_1", "fund_1"),
        Charge("txn_b", 2_500, INSIDE, "pi_2", None),
        Charge("txn_c", 1_000, INSIDE, "pi_new", "fund_1"),  # ours by metadata, never posted
        Charge("txn_d", 7_000, INSIDE, "pi_elsewhere", "fund_2"),  # another fund's
    ]
    compare_donations(report, charges, {"pi_1": paid, "pi_2": short, "pi_3": unseen})
    found = {(d.kind, d.stripe_id, d.journal_cents, d.stripe_cents, d.detail) for d in report.differences}
    assert found == {
        ("amount_mismatch", "pi_2", 2_000, 2_500, "txn_b"),
        ("missing_in_journal", "pi_new", None, 1_000, "txn_c"),
        ("missing_in_stripe", "pi_3", 900, None, ""),
    }
    assert report.matched == 1
    assert report.stripe_cents == 4_000 + 2_500 + 1_000
    assert report.journal_cents == 4_000 + 2_000 + 900


def test_nothing_to_compare_is_a_clean_report() -> None:
    report = _report()
    compare_card_transactions(report, [], {}, set(), {})
    compare_donations(report, [], {})
    assert report.ok and report.matched == 0 and report.difference_cents == 0
