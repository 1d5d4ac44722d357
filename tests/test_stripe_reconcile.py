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
