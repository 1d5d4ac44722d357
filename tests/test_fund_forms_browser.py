"""The fund's forms in a real browser: a double click makes one request, fields follow the category, the form
says who decides before sending, and the approver's inbox moves decided requests live."""

from __future__ import annotations

import httpx
from playwright.async_api import expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.cases import create_case
from ledger.models import Disbursement
from tests.conftest import LiveServer, Network
from tests.test_browser import (
    Cast,
    fixture_browser,  # noqa: F401  (fixture)
    fixture_cast,  # noqa: F401  (fixture)
    fixture_funded,  # noqa: F401  (fixture)
)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def _case_of(sessionmaker: async_sessionmaker, network: Network, username: str) -> str:
    person = network[username]
    async with sessionmaker() as session:
        case = await create_case(session, lead_org_id=person.user.organisation_id, created_by_user_id=person.id)
        return case.code


async def test_a_double_click_makes_one_request_and_the_form_follows_the_category(
    cast: Cast, live_server: LiveServer, network: Network, funded: str, sessionmaker: async_sessionmaker
) -> None:
    code = await _case_of(sessionmaker, network, "worker")
    worker = await cast.login("worker", **PHONE)
    page = worker.page
    await page.goto(live_server.url + "/ledger/request")
    case = page.get_by_label("Case", exact=True)
    await expect(case).to_have_value("")  # no silent default
    nights = page.get_by_label("Nights (hotel only)")
    await expect(nights).to_be_hidden()
    await page.get_by_label("What for").select_option("hotel")
    await expect(nights).to_be_visible()
    await nights.fill("2")
    await page.get_by_label("What for").select_option("calling_card")
    await expect(nights).to_be_hidden()  # and disabled: the 2 typed for the hotel is not sent
    await case.select_option(code)
    await page.get_by_label("Amount (CAD)").fill("20")
    await expect(page.locator("#request-path")).to_contain_text("Fast path: approved at once")
    await page.get_by_role("button", name="Request", exact=True).dblclick()
    await expect(page.get_by_text("Request sent.")).to_be_visible()
    await expect(page.locator("#request-result .status")).to_have_text("Approved")
    await expect(page.get_by_label("Amount (CAD)")).to_have_value("")
    await expect(page.get_by_label("Case", exact=True)).to_have_value("")
    async with sessionmaker() as session:
        made = await session.execute(select(func.count()).select_from(Disbursement))
        assert made.scalar_one() == 1, "a double click makes one request"
        nights_sent = await session.execute(select(Disbursement.nights))
        assert nights_sent.scalar_one() is None
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the form is {width} px wide on a 390 px phone"
    await page.get_by_label("Amount (CAD)").fill("0")
    await page.get_by_role("button", name="Request", exact=True).click()
    await expect(page.locator("#req-amount-error")).to_have_text("The amount must be more than $0.")
    await expect(page.get_by_label("Amount (CAD)")).to_have_value("0")
    cast.assert_no_errors()


async def test_the_inbox_moves_decided_requests_live(
    cast: Cast, live_server: LiveServer, network: Network, funded: str, sessionmaker: async_sessionmaker
) -> None:
    code = await _case_of(sessionmaker, network, "worker")
    approver = await cast.login("approver")
    page = approver.page
    await page.goto(live_server.url + "/ledger/inbox")
    await expect(page.get_by_text("Nothing is waiting.")).to_be_visible()
    await approver.live()
    await approver.mark()
    body = {
        "fund_id": funded,
        "case_code": code,
        "category": "other",
        "amount_cents": 40_000,
        "currency": "CAD",
        "payee": "Bus line",
        "note": "ticket to the shelter",
    }
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        made = await http.post("/api/v1/disbursements", json=body, headers=network["worker"].headers)
        assert made.status_code == 201, made.text
        request_id = made.json()["id"]
        item = page.locator(f"#inbox-rows #inbox-{request_id}")
        await expect(item).to_contain_text("Asked by Worker (community org)")
        await expect(item).to_contain_text("ticket to the shelter")
        await expect(item).to_contain_text("this kind of expense is not on the fast path")
        await expect(page.get_by_text("Nothing is waiting.")).to_be_hidden()
        decided = await http.post(
            f"/api/v1/disbursements/{request_id}/approve", headers=network["approver_community"].headers
        )
        assert decided.status_code == 200, decided.text
    await expect(item).to_have_count(0)
    moved = page.locator(f"#inbox-approved #inbox-{request_id}")
    await expect(moved.locator(".status")).to_have_text("Approved")
    await expect(moved).to_contain_text("(Approver Community)")
    await expect(moved).not_to_contain_text("another approver decides")
    assert await approver.still_marked(), "the inbox reloaded instead of changing live"
    cast.assert_no_errors()
