"""The Stripe webhook: only Stripe's signature over the exact body within 300 s is accepted; each event id
is processed once, even delivered twice or at the same moment; unknown events are stored and acknowledged."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.funds import fund_summary
from ledger.stripe_models import CardTransaction, StripeEvent
from tests.conftest import Network
from tests.fakestripe import FakeStripe
from tests.stripe_support import (
    WEBHOOK_PATH,
    count,
    event_count,
    fixture_billing_env,  # noqa: F401  (fixture)
    fixture_fake,  # noqa: F401  (fixture)
    fixture_http,  # noqa: F401  (fixture)
    fixture_stripe_server,  # noqa: F401  (fixture)
    issued_card,
    journal_count,
)
from tests.test_ledger_support import assert_books_balance, fixture_fund_id  # noqa: F401  (fixture)


async def _capture_event(http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe) -> dict:
    """A capture that happened at Stripe, as the `issuing_transaction.created` event it sends (not yet sent)."""
    _, card = await issued_card(http, network, fund_id)
    auth = fake.request_authorization(card["id"], 2_000, merchant_category="telecommunication_services")
    url, fake.webhook_url = fake.webhook_url, None  # the capture happens; its events are not delivered
    txn = fake.capture(auth.id)
    fake.webhook_url = url
    (event,) = [e for e in fake.events if e["type"] == "issuing_transaction.created"]
    assert event["data"]["object"]["id"] == txn["id"]
    return event


@pytest.mark.parametrize("variant", ["forged", "stale", "tampered", "missing", "malformed"])
async def test_a_bad_signature_is_rejected_and_nothing_is_posted(
    variant: str,
    http: httpx.AsyncClient,
    network: Network,
    fund_id: str,
    fake: FakeStripe,
    sessionmaker: async_sessionmaker,
) -> None:
    event = await _capture_event(http, network, fund_id, fake)
    entries, events = await journal_count(sessionmaker, fund_id), await event_count(sessionmaker)
    delivery = fake.deliver(event, variant)
    assert delivery.status_code == 400
    assert delivery.response is not None and delivery.response.json()["error"] == "invalid_signature"
    assert await journal_count(sessionmaker, fund_id) == entries
    assert await event_count(sessionmaker) == events
    assert await count(sessionmaker, CardTransaction) == 0
    # The genuine delivery still works afterwards.
    assert fake.deliver(event).status_code == 200
    assert await count(sessionmaker, CardTransaction) == 1


async def test_the_same_event_delivered_twice_posts_once(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    event = await _capture_event(http, network, fund_id, fake)
    entries = await journal_count(sessionmaker, fund_id)
    first = fake.deliver(event)
    retry = fake.redeliver(event["id"])  # Stripe's retry: same id and body, a fresh signature
    assert first.status_code == retry.status_code == 200
    assert first.response is not None and retry.response is not None
    assert first.response.json()["duplicate"] is False and retry.response.json()["duplicate"] is True
    assert await journal_count(sessionmaker, fund_id) == entries + 1
    assert await count(sessionmaker, StripeEvent, StripeEvent.id == event["id"]) == 1
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).balance_cents == 1_000_000 - 2_000
    await assert_books_balance(sessionmaker, fund_id)


async def test_concurrent_deliveries_of_one_event_post_once(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    event = await _capture_event(http, network, fund_id, fake)
    entries = await journal_count(sessionmaker, fund_id)
    deliveries = await asyncio.to_thread(fake.deliver_concurrently, event, 6)
    assert [d.status_code for d in deliveries] == [200] * 6, [d.response.text for d in deliveries if d.response]
    duplicates = sorted(d.response.json()["duplicate"] for d in deliveries if d.response is not None)
    assert duplicates == [False] + [True] * 5
    assert await journal_count(sessionmaker, fund_id) == entries + 1
    assert await count(sessionmaker, CardTransaction) == 1
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).balance_cents == 1_000_000 - 2_000
    await assert_books_balance(sessionmaker, fund_id)


async def test_concurrent_authorization_requests_get_one_answer(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    _, card = await issued_card(http, network, fund_id)
    first = fake.request_authorization(card["id"], 500, merchant_category="telecommunication_services")
    request_event = first.request_delivery.event if first.request_delivery else None
    assert request_event is not None
    again = await asyncio.to_thread(fake.deliver_concurrently, request_event, 4)
    assert {d.response.json()["approved"] for d in again if d.response is not None} == {True}
    assert all(d.response is not None and "stripe-version" in d.response.headers for d in again)


async def test_unknown_events_are_stored_and_acknowledged(
    stripe_server: object, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    event = fake.build_event("customer.created", {"id": "cus_123", "object": "customer"})
    delivery = fake.deliver(event)
    assert delivery.status_code == 200
    async with sessionmaker() as session:
        stored = await session.get(StripeEvent, event["id"])
        assert stored is not None and stored.outcome == "ignored" and stored.payload["type"] == "customer.created"


async def test_the_webhook_is_public_but_needs_the_signature(stripe_server: object, fake: FakeStripe) -> None:
    async with httpx.AsyncClient(timeout=10) as plain:
        response = await plain.post(fake.webhook_url or WEBHOOK_PATH, content=b"{}")
    assert response.status_code == 400 and response.json()["error"] == "invalid_signature"
