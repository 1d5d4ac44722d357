"""The fake Stripe server against the real ``stripe`` SDK (16.x): encoding, shapes, idempotency, retries,
errors, lists, Checkout, simulated card purchases and signed webhooks verified by the SDK's own verifier."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe._http_client import HTTPClient

from tests.fakestripe import FakeStripe, WebhookReceiver, decode_form

ADDRESS = {"line1": "1 rue Test", "city": "Montreal", "postal_code": "H2X 1Y4", "country": "CA"}
LODGING = "hotels_motels_and_resorts"


@pytest.fixture(name="fast_retries", autouse=True)
def fixture_fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK sleeps max(INITIAL_DELAY, jittered backoff) between retries; shorten it (SDK constant only)."""
    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.05)


@pytest.fixture(name="fake")
def fixture_fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture(name="receiver")
def fixture_receiver(fake: FakeStripe) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(fake.webhook_secret) as receiver:
        fake.webhook_url = receiver.url
        yield receiver


@pytest.fixture(name="client")
def fixture_client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(fake.secret_key, base_addresses={"api": fake.api_base}, max_network_retries=2)


def make_card(
    client: stripe.StripeClient,
    *,
    limit: int = 50_00,
    categories: list[str] | None = None,
    status: str = "active",
    idempotency_key: str | None = None,
) -> stripe.issuing.Card:
    holder = client.v1.issuing.cardholders.create(
        params={"name": "Jenny Rosen", "type": "individual", "billing": {"address": ADDRESS}}
    )
    options: Any = {"idempotency_key": idempotency_key} if idempotency_key else {}
    return client.v1.issuing.cards.create(
        params={
            "cardholder": holder.id,
            "currency": "cad",
            "type": "virtual",
            "status": status,  # type: ignore[typeddict-item]
            "spending_controls": {
                "spending_limits": [{"amount": limit, "interval": "all_time"}],
                "allowed_categories": categories or [LODGING, "bus_lines"],  # type: ignore[typeddict-item]
            },
            "metadata": {"disbursement_id": "disb_1"},
        },
        options=options,
    )


def luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return total % 10 == 0


# ---------------------------------------------------------------------------------------------------- encoding


def test_form_decoding_matches_stripe_encoding() -> None:
    body = (
        "spending_controls[spending_limits][0][amount]=5000&spending_controls[spending_limits][0][interval]=daily"
        "&spending_controls[spending_limits][1][amount]=100&spending_controls[spending_limits][1][interval]=all_time"
        "&spending_controls[allowed_categories][0]=bus_lines&metadata[disbursement_id]=d%201&expand[]=number"
        "&expand[]=cvc&flag=true&empty="
    )
    assert decode_form(body) == {
        "spending_controls": {
            "spending_limits": [{"amount": "5000", "interval": "daily"}, {"amount": "100", "interval": "all_time"}],
            "allowed_categories": ["bus_lines"],
        },
        "metadata": {"disbursement_id": "d 1"},
        "expand": ["number", "cvc"],
        "flag": "true",
        "empty": "",
    }


# ---------------------------------------------------------------------------------------------------- issuing


def test_cardholder_and_card_round_trip_with_expand(fake: FakeStripe, client: stripe.StripeClient) -> None:
    card = make_card(client)
    assert card.id.startswith("ic_") and card.object == "issuing.card"
    assert card.livemode is False and isinstance(card.created, int)
    assert card.cardholder.id.startswith("ich_") and card.cardholder.object == "issuing.cardholder"
    assert card.status == "active" and card.type == "virtual" and card.currency == "cad"
    assert card.metadata["disbursement_id"] == "disb_1"
    assert card.spending_controls.spending_limits[0].amount == 50_00
    assert card.spending_controls.spending_limits[0].interval == "all_time"
    assert card.spending_controls.allowed_categories == [LODGING, "bus_lines"]
    assert "number" not in card and "cvc" not in card

    created = fake.requests_to("POST", "/v1/issuing/cards")[0]
    assert "spending_controls[spending_limits][0][amount]=5000" in created.body
    assert created.params["metadata"] == {"disbursement_id": "disb_1"}
    assert created.headers["authorization"] == f"Bearer {fake.secret_key}"
    assert created.headers["content-type"] == "application/x-www-form-urlencoded"
    assert created.idempotency_key

    full = client.v1.issuing.cards.retrieve(card.id, params={"expand": ["number", "cvc"]})
    assert len(full.number) == 16 and luhn_ok(full.number) and full.number[-4:] == full.last4 == card.last4
    assert len(full.cvc) == 3 and (full.number, full.cvc) == fake.card_details(card.id)
    assert 1 <= full.exp_month <= 12 and full.exp_year > time.gmtime().tm_year
    assert fake.requests[-1].params == {"expand": ["number", "cvc"]}
    holder = client.v1.issuing.cardholders.retrieve(card.cardholder.id)
    assert holder.name == "Jenny Rosen" and holder.billing.address.city == "Montreal"


def test_card_defaults_inactive_and_status_updates(client: stripe.StripeClient) -> None:
    holder = client.v1.issuing.cardholders.create(params={"name": "Jenny Rosen", "billing": {"address": ADDRESS}})
    card = client.v1.issuing.cards.create(params={"cardholder": holder.id, "currency": "cad", "type": "virtual"})
    assert card.status == "inactive"
    assert client.v1.issuing.cards.update(card.id, params={"status": "active"}).status == "active"
    canceled = client.v1.issuing.cards.update(card.id, params={"status": "canceled", "cancellation_reason": "lost"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "lost")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.issuing.cards.update(card.id, params={"status": "active"})


def test_validation_errors_have_stripe_shape(fake: FakeStripe, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.issuing.cards.create(params={"currency": "cad", "type": "virtual"})  # type: ignore[typeddict-item]
    assert missing.value.http_status == 400 and missing.value.param == "cardholder"
    assert missing.value.code == "parameter_missing"
    assert missing.value.json_body is not None and missing.value.json_body["error"]["type"] == "invalid_request_error"

    holder = client.v1.issuing.cardholders.create(params={"name": "Jenny Rosen", "billing": {"address": ADDRESS}})
    with pytest.raises(stripe.InvalidRequestError) as category:
        client.v1.issuing.cards.create(
            params={
                "cardholder": holder.id,
                "currency": "cad",
                "type": "virtual",
                "spending_controls": {"allowed_categories": ["lodging"]},  # type: ignore[list-item]
            }
        )
    assert category.value.param == "spending_controls[allowed_categories][0]"

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.raw_request("post", "/v1/issuing/cards", cardholder=holder.id, currency="cad", type="virtual", x="1")
    assert unknown.value.code == "parameter_unknown" and unknown.value.param == "x"

    with pytest.raises(stripe.InvalidRequestError) as not_found:
        client.v1.issuing.cards.retrieve("ic_missing")
    assert (not_found.value.http_status, not_found.value.code) == (404, "resource_missing")


def test_wrong_api_key_is_401(fake: FakeStripe) -> None:
    bad = stripe.StripeClient("sk_test_wrong_key_123456", base_addresses={"api": fake.api_base})
    with pytest.raises(stripe.AuthenticationError) as err:
        bad.v1.issuing.cards.list()
    assert err.value.http_status == 401
    assert err.value.json_body is not None and "Invalid API Key" in err.value.json_body["error"]["message"]
    no_auth = httpx.get(f"{fake.api_base}/v1/issuing/cards")
    assert no_auth.status_code == 401 and no_auth.json()["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------------------------------------------- idempotency


def test_same_idempotency_key_returns_the_same_card(fake: FakeStripe, client: stripe.StripeClient) -> None:
    holder = client.v1.issuing.cardholders.create(params={"name": "Jenny Rosen", "billing": {"address": ADDRESS}})
    params: Any = {"cardholder": holder.id, "currency": "cad", "type": "virtual", "metadata": {"d": "1"}}
    first = client.v1.issuing.cards.create(params=params, options={"idempotency_key": "disb_1-card"})
    second = client.v1.issuing.cards.create(params=params, options={"idempotency_key": "disb_1-card"})
    assert first.id == second.id
    assert len(fake.cards) == 1
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert second.last_response.idempotency_key == "disb_1-card"
    assert [r.replayed for r in fake.requests_to("POST", "/v1/issuing/cards")] == [False, True]


def test_same_key_with_other_params_is_an_idempotency_error(fake: FakeStripe, client: stripe.StripeClient) -> None:
    holder = client.v1.issuing.cardholders.create(params={"name": "Jenny Rosen", "billing": {"address": ADDRESS}})
    params: Any = {"cardholder": holder.id, "currency": "cad", "type": "virtual"}
    client.v1.issuing.cards.create(params=params, options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as err:
        client.v1.issuing.cards.create(params={**params, "status": "active"}, options={"idempotency_key": "k"})
    assert err.value.http_status == 400
    assert len(fake.cards) == 1


def test_500_then_success_is_retried_with_the_same_key(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next("/v1/issuing/cards", status=500, method="POST")
    card = make_card(client)
    attempts = fake.requests_to("POST", "/v1/issuing/cards")
    assert [r.status for r in attempts] == [500, 200]
    assert attempts[0].idempotency_key == attempts[1].idempotency_key
    assert [c["id"] for c in fake.cards] == [card.id]


def test_lost_response_is_replayed_not_executed_twice(fake: FakeStripe, client: stripe.StripeClient) -> None:
    """The card is created, the 500 loses the answer; the SDK's retry gets the stored card."""
    fake.fail_next("/v1/issuing/cards", status=500, method="POST", after_execute=True)
    card = make_card(client)
    attempts = fake.requests_to("POST", "/v1/issuing/cards")
    assert [(r.status, r.replayed) for r in attempts] == [(500, False), (200, True)]
    assert [c["id"] for c in fake.cards] == [card.id]


def test_500_until_retries_are_exhausted(fake: FakeStripe, client: stripe.StripeClient) -> None:
    holder = client.v1.issuing.cardholders.create(params={"name": "Jenny Rosen", "billing": {"address": ADDRESS}})
    fake.fail_next("/v1/issuing/cards", status=500, times=3)
    with pytest.raises(stripe.APIError) as err:
        client.v1.issuing.cards.create(params={"cardholder": holder.id, "currency": "cad", "type": "virtual"})
    assert err.value.http_status == 500
    assert err.value.json_body is not None and err.value.json_body["error"]["type"] == "api_error"
    assert len(fake.requests_to("POST", "/v1/issuing/cards")) == 3  # 1 + max_network_retries
    assert fake.cards == []


def test_rate_limit(fake: FakeStripe, client: stripe.StripeClient) -> None:
    # Plain 429: the SDK does not retry (only 409/5xx or Stripe-Should-Retry: true).
    fake.rate_limit_next("/v1/issuing/transactions")
    with pytest.raises(stripe.RateLimitError) as err:
        client.v1.issuing.transactions.list()
    assert err.value.http_status == 429
    assert len(fake.requests_to("GET", "/v1/issuing/transactions")) == 1

    # Stripe-Should-Retry: true: retried until the budget is spent, then surfaced.
    fake.rate_limit_next("/v1/issuing/transactions", times=3, should_retry=True)
    with pytest.raises(stripe.RateLimitError):
        client.v1.issuing.transactions.list()
    assert len(fake.requests_to("GET", "/v1/issuing/transactions")) == 4

    fake.rate_limit_next("/v1/issuing/transactions", times=1, should_retry=True)
    assert client.v1.issuing.transactions.list().data == []


def test_card_error_is_402_and_stored_for_the_key(fake: FakeStripe, client: stripe.StripeClient) -> None:
    holder = client.v1.issuing.cardholders.create(params={"name": "Jenny Rosen", "billing": {"address": ADDRESS}})
    params: Any = {"cardholder": holder.id, "currency": "cad", "type": "virtual"}
    fake.card_error_next("/v1/issuing/cards", code="card_declined", decline_code="insufficient_funds")
    for _ in range(2):
        with pytest.raises(stripe.CardError) as err:
            client.v1.issuing.cards.create(params=params, options={"idempotency_key": "k402"})
        assert (err.value.http_status, err.value.code) == (402, "card_declined")
        assert err.value.json_body is not None and err.value.json_body["error"]["decline_code"] == "insufficient_funds"
    assert [r.replayed for r in fake.requests_to("POST", "/v1/issuing/cards")] == [False, True]


# ---------------------------------------------------------------------------------------------------- purchases


def test_authorization_webhook_decisions(fake: FakeStripe, client: stripe.StripeClient, receiver: Any) -> None:
    card = make_card(client, limit=100_00)

    approved = fake.request_authorization(card.id, 40_00, merchant_category=LODGING, merchant_name="Motel 6")
    assert approved.approved and approved.reason == "webhook_approved"
    assert approved.response is not None and approved.response.json() == {"approved": True}
    request, created = receiver.events[-2:]
    assert request["type"] == "issuing_authorization.request" and created["type"] == "issuing_authorization.created"
    pending = request["data"]["object"]
    assert pending["id"] == approved.id and pending["status"] == "pending" and pending["approved"] is False
    assert pending["pending_request"]["amount"] == 40_00 and pending["amount"] == 0
    assert pending["card"]["id"] == card.id and pending["card"]["metadata"]["disbursement_id"] == "disb_1"
    assert pending["merchant_data"]["category"] == LODGING and pending["merchant_data"]["name"] == "Motel 6"
    auth = client.v1.issuing.authorizations.retrieve(approved.id)
    assert (auth.status, auth.approved, auth.amount) == ("pending", True, 40_00)
    assert auth.request_history[0].reason == "webhook_approved"

    receiver.approve = False
    declined = fake.request_authorization(card.id, 10_00)
    assert (declined.approved, declined.reason, declined.authorization["status"]) == (
        False,
        "webhook_declined",
        "closed",
    )

    receiver.approve, receiver.send_version_header = True, False
    no_version = fake.request_authorization(card.id, 10_00)
    assert (no_version.approved, no_version.reason) == (False, "webhook_error")

    receiver.send_version_header, receiver.delay, fake.authorization_timeout = True, 0.5, 0.2
    slow = fake.request_authorization(card.id, 10_00)
    assert (slow.approved, slow.reason, slow.response) == (False, "webhook_timeout", None)


def test_stripe_declines_before_asking_the_app(fake: FakeStripe, client: stripe.StripeClient, receiver: Any) -> None:
    card = make_card(client, limit=50_00)
    sent = len(receiver.received)
    wrong_category = fake.request_authorization(card.id, 10_00, merchant_category="eating_places_restaurants")
    over_limit = fake.request_authorization(card.id, 50_01)
    assert (wrong_category.reason, over_limit.reason) == ("spending_controls", "spending_controls")
    assert wrong_category.request_delivery is None
    assert [e["type"] for e in receiver.events[sent:]] == ["issuing_authorization.created"] * 2

    first = fake.request_authorization(card.id, 30_00)
    fake.capture(first.id)
    assert fake.request_authorization(card.id, 30_00).reason == "spending_controls"  # 30 + 30 > 50 all_time

    client.v1.issuing.cards.update(card.id, params={"status": "inactive"})
    assert fake.request_authorization(card.id, 1_00).reason == "card_inactive"


def test_capture_refund_and_balance_signs(fake: FakeStripe, client: stripe.StripeClient, receiver: Any) -> None:
    card = make_card(client)
    auth = fake.request_authorization(card.id, 42_00)
    capture = fake.capture(auth.id)
    assert (capture["type"], capture["amount"], capture["authorization"]) == ("capture", -42_00, auth.id)
    assert [e["type"] for e in receiver.events[-2:]] == ["issuing_transaction.created", "issuing_authorization.updated"]
    assert receiver.events[-1]["data"]["previous_attributes"] == {"status": "pending"}
    refund = fake.refund(capture["id"], 2_00)
    assert (refund["type"], refund["amount"]) == ("refund", 2_00)
    assert client.v1.issuing.authorizations.retrieve(auth.id).status == "closed"

    by_type = {b.type: b.amount for b in client.v1.balance_transactions.list(params={"limit": 100}).data}
    assert by_type["issuing_authorization_hold"] == -42_00
    assert by_type["issuing_authorization_release"] == 42_00
    amounts = sorted(b.amount for b in client.v1.balance_transactions.list(params={"type": "issuing_transaction"}))
    assert amounts == [-42_00, 2_00]
    txn = client.v1.issuing.transactions.retrieve(capture["id"], params={"expand": ["balance_transaction"]})
    assert txn.balance_transaction.amount == -42_00  # type: ignore[union-attr]


def test_list_transactions_with_filters_and_pagination(fake: FakeStripe, client: stripe.StripeClient) -> None:
    card, other = make_card(client, limit=1000_00), make_card(client, limit=1000_00)
    start = fake.now()
    ids = []
    for amount in (1_00, 2_00, 3_00, 4_00, 5_00):
        fake.advance(60)
        ids.append(fake.capture(fake.request_authorization(card.id, amount).id)["id"])
    fake.capture(fake.request_authorization(other.id, 9_00).id)

    everything = client.v1.issuing.transactions.list(params={"card": card.id})
    assert [t.id for t in everything.data] == ids[::-1] and everything.has_more is False

    page1 = client.v1.issuing.transactions.list(params={"card": card.id, "limit": 2})
    page2 = client.v1.issuing.transactions.list(
        params={"card": card.id, "limit": 2, "starting_after": page1.data[-1].id}
    )
    page3 = client.v1.issuing.transactions.list(
        params={"card": card.id, "limit": 2, "starting_after": page2.data[-1].id}
    )
    assert (page1.has_more, page2.has_more, page3.has_more) == (True, True, False)
    assert [t.id for t in [*page1.data, *page2.data, *page3.data]] == ids[::-1]
    assert page1.url == "/v1/issuing/transactions"
    back = client.v1.issuing.transactions.list(params={"card": card.id, "limit": 2, "ending_before": ids[2]})
    assert [t.id for t in back.data] == [ids[4], ids[3]]

    auto = client.v1.issuing.transactions.list(params={"card": card.id, "limit": 2}).auto_paging_iter()
    assert [t.id for t in auto] == ids[::-1]

    window = client.v1.issuing.transactions.list(
        # Bounds half-way between the captures (made at start + 60, 120, ... 300 plus the real seconds that
        # pass meanwhile): a second ticking by on a busy machine does not move a capture out of the window.
        params={"card": card.id, "created": {"gte": start + 90, "lte": start + 270}}
    )
    assert [t.amount for t in window.data] == [-4_00, -3_00, -2_00]
    assert fake.requests[-1].params["created"] == {"gte": str(start + 90), "lte": str(start + 270)}
    assert len(client.v1.issuing.transactions.list(params={"limit": 100}).data) == 6
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.issuing.transactions.list(params={"limit": 101})


# ---------------------------------------------------------------------------------------------------- checkout


def test_checkout_session_create_complete_and_reconcile(
    fake: FakeStripe, client: stripe.StripeClient, receiver: Any
) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {"currency": "cad", "unit_amount": 25_00, "product_data": {"name": "Gift"}},
                    "quantity": 2,
                }
            ],
            "success_url": "https://refuge.test/donations/thanks?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://refuge.test/donations",
            "client_reference_id": "fund_1",
            "metadata": {"fund_id": "fund_1"},
            "payment_intent_data": {"metadata": {"fund_id": "fund_1"}},
        }
    )
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert (session.amount_total, session.currency, session.status, session.payment_status) == (
        50_00,
        "cad",
        "open",
        "unpaid",
    )
    assert session.url is not None and session.url.startswith(fake.api_base)
    assert session.client_reference_id == "fund_1" and session.metadata["fund_id"] == "fund_1"
    assert session.payment_intent is None
    with_items = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert with_items.line_items is not None and with_items.line_items.data[0].quantity == 2

    delivery = fake.complete_checkout(session.id)
    assert delivery.ok
    event = receiver.events[-1]
    assert event["type"] == "checkout.session.completed" and event["id"].startswith("evt_")
    assert event["livemode"] is False and event["api_version"] == stripe.api_version
    completed = event["data"]["object"]
    assert (completed["amount_total"], completed["currency"], completed["payment_status"]) == (50_00, "cad", "paid")
    assert completed["payment_intent"].startswith("pi_")

    intent = client.v1.payment_intents.retrieve(completed["payment_intent"], params={"expand": ["latest_charge"]})
    assert intent.status == "succeeded" and intent.metadata["fund_id"] == "fund_1"
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    balance = client.v1.balance_transactions.retrieve(str(charge.balance_transaction))
    assert (balance.type, balance.amount, balance.fee, balance.net) == ("charge", 50_00, 175, 50_00 - 175)
    listed = client.v1.balance_transactions.list(params={"created": {"gte": session.created}, "type": "charge"})
    assert [b.id for b in listed.data] == [balance.id]

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_hosted_checkout_page_pays_and_redirects(fake: FakeStripe, client: stripe.StripeClient, receiver: Any) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {"currency": "cad", "unit_amount": 10_00, "product_data": {"name": "Gift"}},
                    "quantity": 1,
                }
            ],
            "success_url": "https://refuge.test/thanks?session={CHECKOUT_SESSION_ID}",
        }
    )
    assert session.url is not None
    page = httpx.get(session.url)
    assert page.status_code == 200 and "Pay" in page.text
    paid = httpx.post(session.url, data={"email": "ana@example.org"})
    assert paid.status_code == 303 and paid.headers["location"] == f"https://refuge.test/thanks?session={session.id}"
    fake.wait_for_background()
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"
    assert receiver.events[-1]["data"]["object"]["customer_details"]["email"] == "ana@example.org"


# ---------------------------------------------------------------------------------------------------- webhooks


def test_signatures_verified_and_rejected_by_the_sdk(fake: FakeStripe, client: stripe.StripeClient) -> None:
    event = fake.build_event("checkout.session.completed", {"id": "cs_test_x", "object": "checkout.session"})
    payload, headers = fake.signed_request(event)
    assert headers["Stripe-Signature"].startswith("t=") and ",v1=" in headers["Stripe-Signature"]
    verified = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], fake.webhook_secret)
    assert (verified.id, verified.type, verified.data.object.id) == (event["id"], event["type"], "cs_test_x")
    assert client.construct_event(payload.encode(), headers["Stripe-Signature"], fake.webhook_secret).id == event["id"]
    assert json.loads(payload) == event

    for variant in ("forged", "stale", "tampered", "missing", "malformed"):
        bad_payload, bad_headers = fake.signed_request(event, variant)
        with pytest.raises(stripe.SignatureVerificationError):
            client.construct_event(bad_payload, bad_headers.get("Stripe-Signature"), fake.webhook_secret)
    tampered, tampered_headers = fake.signed_request(event, "tampered")
    assert tampered != payload
    stripe.WebhookSignature.verify_header(payload, tampered_headers["Stripe-Signature"], fake.webhook_secret)


def test_deliveries_bad_twice_and_concurrent(fake: FakeStripe, receiver: Any) -> None:
    event = fake.build_event("issuing_transaction.created", {"id": "ipi_x", "object": "issuing.transaction"})
    for variant in ("forged", "stale", "tampered", "missing"):
        assert fake.deliver(event, variant).status_code == 400
    assert len(receiver.rejected) == 4 and receiver.events == []

    assert fake.send_event("charge.succeeded", {"id": "ch_x", "object": "charge"}).ok
    first, again = fake.deliver(event), fake.redeliver(event["id"])
    assert first.ok and again.ok and first.payload == again.payload
    concurrent = fake.deliver_concurrently(event, n=3)
    assert all(d.ok for d in concurrent)
    assert [e["id"] for e in receiver.events].count(event["id"]) == 5
    stored = {e["id"]: e for e in fake.events}
    assert stored[event["id"]]["type"] == "issuing_transaction.created"


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")  # the SDK's httpx client
async def test_async_helpers_deliver_in_process(fake: FakeStripe) -> None:
    """With ``webhook_asgi_app`` the async helpers call an ASGI app directly (no live server), and the SDK's
    async client works against the fake too."""
    receiver = WebhookReceiver(fake.webhook_secret)
    fake.webhook_asgi_app, fake.webhook_url = receiver, "http://app.test/stripe/webhook"
    client = fake.client()
    holder = await client.v1.issuing.cardholders.create_async(
        params={"name": "Jenny Rosen", "billing": {"address": ADDRESS}}
    )
    card = await client.v1.issuing.cards.create_async(
        params={"cardholder": holder.id, "currency": "cad", "type": "virtual", "status": "active"}
    )
    result = await fake.arequest_authorization(card.id, 12_00)
    assert result.approved and result.reason == "webhook_approved"
    txn = await fake.acapture(result.id)
    assert txn["amount"] == -12_00
    deliveries = await fake.adeliver_concurrently(fake.get(receiver.events[-1]["id"]), n=2)
    assert [d.status_code for d in deliveries] == [200, 200]
    assert (await fake.adeliver(receiver.events[0], "forged")).status_code == 400
    assert [e["type"] for e in receiver.events[:4]] == [
        "issuing_authorization.request",
        "issuing_authorization.created",
        "issuing_transaction.created",
        "issuing_authorization.updated",
    ]


def test_events_api_and_recorded_api_events(fake: FakeStripe, client: stripe.StripeClient) -> None:
    card = make_card(client)
    client.v1.issuing.cards.update(card.id, params={"metadata": {"note": "x"}})
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert types[:3] == ["issuing_card.updated", "issuing_card.created", "issuing_cardholder.created"]
    updated = client.v1.events.list(params={"type": "issuing_card.updated"}).data[0]
    assert updated.data.object.metadata["note"] == "x"
    assert updated.data.previous_attributes.to_dict() == {"metadata": {"note": None}}
    assert client.v1.events.retrieve(updated.id).id == updated.id
    assert fake.deliveries == []  # API events are recorded, not delivered, unless deliver_api_events is set


def test_api_events_delivered_when_enabled(fake: FakeStripe, client: stripe.StripeClient, receiver: Any) -> None:
    fake.deliver_api_events = True
    card = make_card(client)
    fake.wait_for_background()
    assert {e["type"] for e in receiver.events} == {"issuing_cardholder.created", "issuing_card.created"}
    assert next(e for e in receiver.events if e["type"] == "issuing_card.created")["data"]["object"]["id"] == card.id
