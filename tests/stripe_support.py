"""Fixtures and helpers of the Stripe tests: the fake Stripe server, the app served with Stripe settings
(uvicorn in a thread, so the fake can POST webhooks to it), and approved disbursements to pay by card."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from exchange.settings import Settings
from ledger.models import JournalEntry
from ledger.stripe_models import StripeEvent
from tests.conftest import LiveServer, Network
from tests.fakestripe import FakeStripe
from tests.test_ledger_support import disbursement_body, new_case

WEBHOOK_PATH = "/webhooks/stripe"

# The approvals each category needs from the network's approvers (see the default rules in DESIGN.md).
APPROVERS = {
    "hotel": ("approver",),
    "travel_interprovincial": ("approver",),
    "travel_international": ("approver", "approver_community"),
}
NIGHTS = {"hotel": 2}
AMOUNTS = {"hotel": 30_000, "travel_interprovincial": 40_000, "travel_international": 90_000}


@pytest.fixture(name="fake")
def fixture_fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture(name="billing_env")
def fixture_billing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_BILLING_LINE1", "1 Coalition Street")
    monkeypatch.setenv("STRIPE_BILLING_CITY", "Montreal")
    monkeypatch.setenv("STRIPE_BILLING_POSTAL_CODE", "H2X 1Y4")
    monkeypatch.setenv("STRIPE_BILLING_STATE", "QC")


def stripe_settings(settings: Settings, fake: FakeStripe) -> Settings:
    return replace(
        settings,
        stripe_secret_key=fake.secret_key,
        stripe_webhook_secret=fake.webhook_secret,
        stripe_api_base=fake.api_base,
    )


@pytest.fixture(name="stripe_server")
def fixture_stripe_server(
    settings: Settings, fake: FakeStripe, billing_env: None, network: Network
) -> Iterator[LiveServer]:
    """The app with Stripe configured, served for real; the fake delivers its events to it."""
    with LiveServer(stripe_settings(settings, fake)) as server:
        fake.webhook_url = server.url + WEBHOOK_PATH
        yield server


@pytest.fixture(name="http")
async def fixture_http(stripe_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stripe_server.url, timeout=30) as http:
        yield http


async def approved_disbursement(
    client: AsyncTestClient | httpx.AsyncClient,
    network: Network,
    fund_id: str,
    category: str = "calling_card",
    amount_cents: int | None = None,
) -> dict[str, Any]:
    """A request by the lead worker, approved (at once on the fast path, else by the approvers it needs)."""
    case = await new_case(client, network["worker"])  # type: ignore[arg-type]
    body = disbursement_body(
        fund_id,
        case,
        category=category,
        amount_cents=amount_cents or AMOUNTS.get(category, 2_500),
        nights=NIGHTS.get(category),
    )
    response = await client.post("/api/v1/disbursements", json=body, headers=network["worker"].headers)
    assert response.status_code == 201, response.text
    d = response.json()
    for approver in APPROVERS.get(category, ("approver",)) if d["status"] != "approved" else ():
        done = await client.post(f"/api/v1/disbursements/{d['id']}/approve", headers=network[approver].headers)
        assert done.status_code == 200, done.text
        d = done.json()
    assert d["status"] == "approved", d
    return d


async def pay_by_card(http: httpx.AsyncClient, network: Network, disbursement_id: str, **extra: Any) -> httpx.Response:
    return await http.post(
        f"/api/v1/disbursements/{disbursement_id}/pay",
        json={"method": "stripe_card", **extra},
        headers=network["worker"].headers,
    )


async def issued_card(http: httpx.AsyncClient, network: Network, fund_id: str, **kw: Any) -> tuple[dict, dict]:
    """(disbursement, card payload) for a new approved request paid by card."""
    d = await approved_disbursement(http, network, fund_id, **kw)
    paid = await pay_by_card(http, network, d["id"])
    assert paid.status_code == 200, paid.text
    return d, paid.json()["card"]


async def count(sessionmaker: async_sessionmaker, model: Any, *where: Any) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def journal_count(sessionmaker: async_sessionmaker, fund_id: str) -> int:
    return await count(sessionmaker, JournalEntry, JournalEntry.fund_id == fund_id)


async def event_count(sessionmaker: async_sessionmaker) -> int:
    return await count(sessionmaker, StripeEvent)


async def donate(http: httpx.AsyncClient, fund_id: str, amount: str) -> httpx.Response:
    """The donor's browser: no login, the page's CSRF cookie and token, the form."""
    page = await http.get(f"/donate/{fund_id}")
    assert page.status_code == 200, page.text
    token = page.cookies.get("csrftoken") or http.cookies.get("csrftoken")
    return await http.post(f"/donate/{fund_id}", data={"amount": amount, "_csrf_token": token})
