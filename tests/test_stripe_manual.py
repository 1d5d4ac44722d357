"""Without a Stripe key payments are manual: `stripe_card` is refused with a clear error, the pages say so,
and the webhook accepts nothing."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.funds import fund_summary
from ledger.stripe_models import Card, StripeEvent
from tests.conftest import Network
from tests.stripe_support import approved_disbursement, count
from tests.test_ledger_support import fixture_fund_id  # noqa: F401  (fixture)


async def test_without_a_key_card_payment_is_refused_and_pages_say_payments_are_manual(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    d = await approved_disbursement(client, network, fund_id)
    refused = await client.post(
        f"/api/v1/disbursements/{d['id']}/pay", json={"method": "stripe_card"}, headers=network["worker"].headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == "stripe_not_configured"
    assert "manual" in refused.json()["detail"]
    assert await count(sessionmaker, Card) == 0
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).committed_cents == 2_500  # still approved, still committed

    page = await client.get("/stripe/cards", headers=network["worker"].headers)
    assert page.status_code == 200
    assert 'id="payments-manual"' in page.text
    assert "Payments are manual: cash, cheque, or e-transfer with a reference" in page.text
    assert "Issue a virtual card" not in page.text and d["case_code"] in page.text

    donate = await client.get(f"/donate/{fund_id}")  # public: no login
    assert donate.status_code == 200 and "Online donations are not set up" in donate.text
    audit = await client.get("/stripe/reconcile", headers=network["auditor"].headers)
    assert audit.status_code == 200 and 'id="payments-manual"' in audit.text
    api = await client.get(f"/api/v1/funds/{fund_id}/reconciliation", headers=network["auditor"].headers)
    assert api.status_code == 409 and api.json()["error"] == "stripe_not_configured"

    # A manual payment still works as before.
    manual = await client.post(
        f"/api/v1/disbursements/{d['id']}/pay",
        json={"method": "manual", "reference": "e-transfer 4411"},
        headers=network["approver"].headers,  # the requester does not record their own payment
    )
    assert manual.status_code == 200 and manual.json()["status"] == "paid"


async def test_without_a_webhook_secret_no_event_is_accepted(
    client: AsyncTestClient, sessionmaker: async_sessionmaker
) -> None:
    response = await client.post("/webhooks/stripe", content=b'{"id": "evt_1", "type": "checkout.session.completed"}')
    assert response.status_code == 400 and response.json()["error"] == "stripe_not_configured"
    assert await count(sessionmaker, StripeEvent) == 0
