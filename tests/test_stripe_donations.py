"""Donations: the public page sends the donor to Stripe Checkout; the completed session posts a deposit once."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.funds import fund_summary
from ledger.journal import list_entries
from ledger.stripe_models import Donation
from tests.conftest import Network
from tests.fakestripe import FakeStripe
from tests.stripe_support import (
    count,
    donate,
    fixture_billing_env,  # noqa: F401  (fixture)
    fixture_fake,  # noqa: F401  (fixture)
    fixture_http,  # noqa: F401  (fixture)
    fixture_stripe_server,  # noqa: F401  (fixture)
    journal_count,
)
from tests.test_ledger_support import assert_books_balance, fixture_fund_id  # noqa: F401  (fixture)


async def test_a_checkout_donation_is_posted_as_a_deposit_once(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    answer = await donate(http, fund_id, "125.50")
    assert answer.status_code == 200, answer.text
    (session,) = fake.checkout_sessions
    assert session["amount_total"] == 12_550 and session["currency"] == "cad" and session["mode"] == "payment"
    assert session["metadata"]["fund_id"] == fund_id
    assert re.search(r'id="checkout-link" href="([^"]+)"', answer.text).group(1) == session["url"]  # type: ignore[union-attr]
    (created,) = fake.requests_to("POST", "/v1/checkout/sessions")
    assert created.idempotency_key == f"refuge-donation-{session['client_reference_id']}"
    entries = await journal_count(sessionmaker, fund_id)
    delivery = fake.complete_checkout(session["id"])
    assert delivery.status_code == 200
    assert fake.redeliver(delivery.event["id"]).status_code == 200
    assert await journal_count(sessionmaker, fund_id) == entries + 1
    async with sessionmaker() as db:
        latest = (await list_entries(db, fund_id, limit=1))[0]
        assert latest.entry.kind == "deposit"
        assert {(line.account, line.side, line.amount_cents) for line in latest.lines} == {
            ("assets:cash", "debit", 12_550),
            ("income:donation", "credit", 12_550),
        }
        assert (await fund_summary(db, fund_id)).balance_cents == 1_000_000 + 12_550
        donation = await db.get(Donation, session["client_reference_id"])
        assert donation is not None and donation.status == "paid" and donation.entry_id == latest.entry.id
        assert donation.payment_intent_id == fake.checkout_sessions[0]["payment_intent"]
    await assert_books_balance(sessionmaker, fund_id)


async def test_a_donation_amount_is_checked_before_stripe_is_asked(
    http: httpx.AsyncClient, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    for bad in ("0.50", "abc", "12.345", "-5"):
        answer = await donate(http, fund_id, bad)
        assert answer.status_code == 422, bad
    assert fake.checkout_sessions == []
    assert await count(sessionmaker, Donation) == 0
    missing = await http.get("/donate/no-such-fund")
    assert missing.status_code == 404


async def test_an_amount_that_is_not_dollars_and_cents_is_a_form_error_not_a_crash(
    http: httpx.AsyncClient, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    # A float parser would take these (or overflow on them); the one money parser of the forms refuses them.
    for bad in ("Infinity", "-Infinity", "NaN", "1e999999", "1e3", "9" * 400, "0x10", "1_000"):
        answer = await donate(http, fund_id, bad)
        assert answer.status_code == 422, bad
        assert "Write the amount in dollars" in answer.text, bad
    # Written as people write it, the amount is taken.
    assert (await donate(http, fund_id, "$1 200,50")).status_code == 200
    assert fake.checkout_sessions[0]["amount_total"] == 120_050
    assert await count(sessionmaker, Donation) == 1
