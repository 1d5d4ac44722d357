"""Virtual cards: issued to the organisation with the category's controls, authorized in real time against
what remains, captures and refunds posted to the journal, the rest released when the card closes."""

from __future__ import annotations

import copy

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.funds import fund_summary
from ledger.journal import list_entries
from ledger.models import Disbursement, Payment
from ledger.stripe_models import Card, CardAuthorization, Cardholder
from tests.conftest import Network, eventually
from tests.fakestripe import FakeStripe
from tests.stripe_support import (
    approved_disbursement,
    fixture_billing_env,  # noqa: F401  (fixture)
    fixture_fake,  # noqa: F401  (fixture)
    fixture_http,  # noqa: F401  (fixture)
    fixture_stripe_server,  # noqa: F401  (fixture)
    issued_card,
    pay_by_card,
)
from tests.test_ledger_support import assert_books_balance, fixture_fund_id  # noqa: F401  (fixture)

EXPECTED_CATEGORIES = {
    "hotel": ["hotels_motels_and_resorts"],
    "travel_local": ["bus_lines", "commuter_transport_and_ferries", "passenger_railways", "taxicabs_limousines"],
    "travel_interprovincial": [
        "airlines_air_carriers",
        "bus_lines",
        "commuter_transport_and_ferries",
        "passenger_railways",
        "taxicabs_limousines",
    ],
    "travel_international": [
        "airlines_air_carriers",
        "bus_lines",
        "commuter_transport_and_ferries",
        "passenger_railways",
        "taxicabs_limousines",
    ],
    "calling_card": ["telecommunication_services"],
    "basic_needs": [
        "drug_stores_and_pharmacies",
        "family_clothing_stores",
        "grocery_stores_supermarkets",
        "mens_womens_clothing_stores",
        "shoe_stores",
    ],
}


async def test_cards_carry_the_exact_controls_of_each_category(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    for category, allowed in EXPECTED_CATEGORIES.items():
        d = await approved_disbursement(http, network, fund_id, category)
        paid = await pay_by_card(http, network, d["id"])
        assert paid.status_code == 200, paid.text
        body = paid.json()
        assert body["status"] == "approved" and body["committed_cents"] == d["amount_cents"]
        card = body["card"]
        stripe_card = fake.get(card["id"])
        assert stripe_card["type"] == "virtual" and stripe_card["status"] == "active"
        assert stripe_card["currency"] == "cad"
        assert stripe_card["spending_controls"]["allowed_categories"] == allowed, category
        assert stripe_card["spending_controls"]["spending_limits"] == [
            {"amount": d["amount_cents"], "categories": None, "interval": "all_time"}
        ]
        assert stripe_card["metadata"] == {"disbursement_id": d["id"], "fund_id": fund_id}
        # Shown once: the number, CVC and expiry come back in this answer, as Stripe has them.
        number, cvc = fake.card_details(card["id"])
        assert (card["number"], card["cvc"]) == (number, cvc)
        assert (card["exp_month"], card["exp_year"]) == (stripe_card["exp_month"], stripe_card["exp_year"])
        assert card["last4"] == number[-4:]
        again = await pay_by_card(http, network, d["id"])
        assert again.status_code == 200 and again.json()["card"]["id"] == card["id"]
        assert "number" not in again.json()["card"] and "cvc" not in again.json()["card"]
    # One cardholder, the worker's organisation, created once with an idempotency key of our ids.
    assert len(fake.cardholders) == 1
    holder = fake.cardholders[0]
    assert holder["type"] == "company" and holder["metadata"] == {"org_id": network.orgs["community"].id}
    created = fake.requests_to("POST", "/v1/issuing/cards")
    assert len(created) == len(EXPECTED_CATEGORIES) == len(fake.cards)
    keys = {r.idempotency_key for r in created}
    assert all(k and k.startswith("refuge-card-") for k in keys) and len(keys) == len(created)
    async with sessionmaker() as session:
        holders = (await session.execute(Cardholder.__table__.select())).all()
        assert [h.stripe_cardholder_id for h in holders] == [holder["id"]]
        stored = (await session.execute(Card.__table__.select())).mappings().all()
        # Only the id and the last four digits are kept, never the number.
        assert {len(c["last4"]) for c in stored} == {4}
        assert not any("number" in key or "cvc" in key for key in stored[0])
    other = await approved_disbursement(http, network, fund_id, "other", amount_cents=2_000)
    refused = await pay_by_card(http, network, other["id"])
    assert refused.status_code == 422 and refused.json()["error"] == "no_card_for_category"
    await assert_books_balance(sessionmaker, fund_id)


async def test_a_retried_pay_after_a_lost_answer_makes_no_second_card(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe
) -> None:
    d = await approved_disbursement(http, network, fund_id)
    # Stripe creates the card, then the answer is lost; the SDK retries with the same idempotency key.
    fake.fail_next("/v1/issuing/cards", status=500, after_execute=True, method="POST")
    paid = await pay_by_card(http, network, d["id"])
    assert paid.status_code == 200, paid.text
    assert len(fake.cards) == 1
    assert paid.json()["card"]["id"] == fake.cards[0]["id"]


async def test_authorization_within_the_amount_is_approved_and_over_it_declined(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id)  # calling card, 25.00
    first = fake.request_authorization(card["id"], 2_000, merchant_category="telecommunication_services")
    assert first.approved and first.reason == "webhook_approved"
    assert first.response is not None and first.response.headers["stripe-version"] == fake.api_version
    # 20.00 is held by the pending authorization: 10.00 more does not fit in the 5.00 left. Stripe's own
    # all-time limit declines it before asking us...
    over = fake.request_authorization(card["id"], 1_000, merchant_category="telecommunication_services")
    assert not over.approved and over.reason == "spending_controls"
    # ...and our answer declines it too, when Stripe does ask (a signed request straight to the webhook).
    asked = copy.deepcopy(first.authorization)
    asked.update(id="iauth_over", approved=False, amount=0, status="pending")
    asked["pending_request"] = {"amount": 1_000, "currency": "cad", "merchant_amount": 1_000}
    delivery = fake.deliver(fake.build_event("issuing_authorization.request", asked))
    assert delivery.status_code == 200 and delivery.response is not None
    assert delivery.response.json() == {"approved": False}
    assert delivery.response.headers["stripe-version"] == fake.api_version
    async with sessionmaker() as session:
        answers = {a.id: a for a in (await session.execute(CardAuthorization.__table__.select())).all()}
        assert answers[first.id].approved and answers[first.id].reason == "approved"
        assert not answers["iauth_over"].approved and answers["iauth_over"].reason == "insufficient_remaining"
        # Authorizations post nothing: the approved amount is still committed, no payment entry.
        summary = await fund_summary(session, fund_id)
        assert summary.committed_cents == 2_500
    state = await http.get(f"/api/v1/disbursements/{d['id']}/card", headers=network["worker"].headers)
    assert state.json()["held_cents"] == 2_000 and state.json()["remaining_cents"] == 500
    # Stripe's own controls stop a merchant of another category before it asks us.
    hotel = fake.request_authorization(card["id"], 100, merchant_category="hotels_motels_and_resorts")
    assert not hotel.approved and hotel.reason == "spending_controls"


async def test_a_capture_posts_and_closing_releases_the_remainder(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id, category="hotel")  # 300.00, two nights
    auth = fake.request_authorization(card["id"], 25_000)
    assert auth.approved
    capture = fake.capture(auth.id, 24_000)
    assert capture["amount"] == -24_000
    async with sessionmaker() as session:
        entries = await list_entries(session, fund_id)
        posted = entries[0]
        assert posted.entry.kind == "card_capture" and posted.entry.disbursement_id == d["id"]
        assert {(line.account, line.side, line.amount_cents) for line in posted.lines} == {
            ("expenses:hotel", "debit", 24_000),
            ("assets:cash", "credit", 24_000),
        }
        summary = await fund_summary(session, fund_id)
        assert summary.balance_cents == 1_000_000 - 24_000
        assert summary.committed_cents == 6_000  # 300.00 approved, 240.00 spent
        row = await session.get(Disbursement, d["id"])
        assert row is not None and row.status == "approved" and row.paid_cents == 24_000
    closed = await http.post(f"/api/v1/disbursements/{d['id']}/card/close", headers=network["worker"].headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["captured_cents"] == 24_000
    assert fake.get(card["id"])["status"] == "canceled"
    async with sessionmaker() as session:
        summary = await fund_summary(session, fund_id)
        assert summary.committed_cents == 0 and summary.balance_cents == 976_000
        row = await session.get(Disbursement, d["id"])
        assert row is not None and (row.status, row.paid_cents, row.committed_cents) == ("paid", 24_000, 0)
        payment = (await session.execute(Payment.__table__.select())).one()
        assert (payment.method, payment.amount_cents, payment.external_id) == ("stripe_card", 24_000, card["id"])
    # A closed card is declined by Stripe itself, and would be by us.
    late = fake.request_authorization(card["id"], 100)
    assert not late.approved
    await assert_books_balance(sessionmaker, fund_id)


async def test_captures_reaching_the_limit_close_the_card_and_pay_the_request(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id)
    auth = fake.request_authorization(card["id"], 2_500, merchant_category="telecommunication_services")
    fake.capture(auth.id)

    async def paid() -> bool:
        async with sessionmaker() as session:
            row = await session.get(Disbursement, d["id"], populate_existing=True)
            return row is not None and row.status == "paid"

    assert await eventually(paid)
    assert fake.get(card["id"])["status"] == "canceled"
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).committed_cents == 0
    await assert_books_balance(sessionmaker, fund_id)


async def test_a_refund_reverses_the_capture(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id, category="basic_needs", amount_cents=10_000)
    auth = fake.request_authorization(card["id"], 8_000, merchant_category="grocery_stores_supermarkets")
    capture = fake.capture(auth.id)
    refund = fake.refund(capture["id"], 3_000)
    assert refund["amount"] == 3_000
    async with sessionmaker() as session:
        entries = await list_entries(session, fund_id)
        assert entries[0].entry.kind == "card_refund"
        assert {(line.account, line.side, line.amount_cents) for line in entries[0].lines} == {
            ("assets:cash", "debit", 3_000),
            ("expenses:basic_needs", "credit", 3_000),
        }
        summary = await fund_summary(session, fund_id)
        assert summary.balance_cents == 1_000_000 - 8_000 + 3_000
        # The card may spend the refunded 30.00 again (Stripe's all-time limit counts it back): committed.
        assert summary.committed_cents == 10_000 - 5_000
        row = await session.get(Disbursement, d["id"])
        assert row is not None and row.paid_cents == 5_000
    again = fake.request_authorization(card["id"], 5_000, merchant_category="grocery_stores_supermarkets")
    assert again.approved
    await assert_books_balance(sessionmaker, fund_id)
