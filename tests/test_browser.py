"""Real browsers on the real app: Debian's Chromium driven by Playwright against `live_server`.

Each person has a browser context of their own and logs in through the login form. What is asserted is
what they see; live changes are checked on a page that must not navigate (a marker set on `window` before
the change is still there after it). Any JavaScript error, CSP violation, failed request or htmx error logged
to the console fails the test, except a live fragment the page has no slot for (see OOB_MISS_LOG). Screenshots
of each step go to tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.deposits import deposit
from ledger.funds import create_fund
from tests.conftest import PASSWORD, LiveServer, Network

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Names each element of a socket message that found no slot on the page. Playwright's init scripts are not
# page scripts: the CSP does not apply to them.
WS_PROBE = """
document.addEventListener("htmx:oobErrorNoTarget", (e) => {
  console.warn("oob-miss " + e.detail.content.outerHTML.slice(0, 200));
});
"""
# The board socket sends each user every fragment they may see and lets a page ignore those it has no slot for
# (templates/fragments/hold_oob.html says so): a pool row reaching the requests page (the ledger pages name
# themselves on their socket and get only swaps with a slot: exchange/fund/live.py). htmx logs each such miss
# as this console error; the probe above records which element it was, and a test asserts there are none where
# every slot should exist.
OOB_MISS_LOG = "htmx:oobErrorNoTarget"
EXPECT_TIMEOUT_MS = 8_000
LOGIN_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(name="browser", scope="module")
async def fixture_browser() -> AsyncIterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@dataclass
class Visitor:
    """One person at one browser: their context, their tab, and every error their tab reported."""

    name: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    oob_misses: list[str] = field(default_factory=list)

    async def shot(self, step: str) -> None:
        # caret="initial": hiding the caret injects a style element, which the CSP refuses (a console error).
        await self.page.screenshot(path=str(ARTIFACTS / f"{step}.png"), full_page=True, caret="initial")

    async def live(self) -> None:
        """Wait until the page's board socket is subscribed: the server then shows the "Live" badge.

        A DOM wait, not `wait_for_function`: its polling evaluates a string, which the page's CSP refuses."""
        await expect(self.page.locator("#live-status.on")).to_be_visible()

    async def mark(self) -> None:
        await self.page.evaluate("window.__marker = 1")

    async def still_marked(self) -> bool:
        """True if the tab is the same document as when `mark()` ran: no reload, no navigation."""
        return await self.page.evaluate("window.__marker === 1")


def _on_console(visitor: Visitor, message: ConsoleMessage) -> None:
    if message.type == "warning" and message.text.startswith("oob-miss "):
        visitor.oob_misses.append(message.text.removeprefix("oob-miss "))
        return
    if message.type != "error" or message.text == OOB_MISS_LOG:
        return
    url = message.location.get("url", "")
    visitor.errors.append(f"console: {message.text} ({url})")


class Cast:
    """The people of one test; their contexts close at teardown, whatever happened."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.visitors: list[Visitor] = []

    async def login(self, username: str, password: str = PASSWORD, **context_options: object) -> Visitor:
        """A fresh browser context, logged in as `username` through the login form; it lands on the person's home
        page. Logging in checks an argon2 hash, slow on a busy machine: that one step gets a longer wait."""
        context = await self.browser.new_context(locale="en-CA", **context_options)  # type: ignore[arg-type]
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        await context.add_init_script(WS_PROBE)
        page = await context.new_page()
        visitor = Visitor(username, context, page)
        self.visitors.append(visitor)
        page.on("console", lambda message: _on_console(visitor, message))
        page.on("pageerror", lambda error: visitor.errors.append(f"pageerror: {error}"))
        await page.goto(self.server.url + "/login")
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Log in").click(timeout=LOGIN_TIMEOUT_MS)
        await page.wait_for_url(lambda url: "/login" not in url, timeout=LOGIN_TIMEOUT_MS)
        await expect(page.locator(".who")).to_contain_text(username.replace("_", " ").title())
        return visitor

    def errors(self) -> dict[str, list[str]]:
        return {v.name: v.errors for v in self.visitors if v.errors}

    def assert_no_errors(self) -> None:
        assert not self.errors(), self.errors()


@pytest.fixture(name="cast")
async def fixture_cast(browser: Browser, live_server: LiveServer) -> AsyncIterator[Cast]:
    cast = Cast(browser, live_server)
    yield cast
    for visitor in cast.visitors:  # shown with a failure's captured output
        if visitor.errors or visitor.oob_misses:
            print(f"{visitor.name}: errors {visitor.errors}, fragments without a slot {visitor.oob_misses}")
    for visitor in cast.visitors:
        await visitor.context.close()


def pool_row(page: Page, pool_id: str) -> Locator:
    return page.locator(f"#pool-{pool_id}")


async def test_plus_one_on_a_shelter_board_reaches_the_police_board_live(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    pool_id = network.pools["a"].id  # Maison Alpha, women: capacity 10, occupied 4 → 6 free
    police = await cast.login("police")
    shelter = await cast.login("shelter_a")
    for visitor in (police, shelter):  # from their homes to the board
        await visitor.page.goto(live_server.url + "/")
    await police.live()
    await shelter.live()
    police_row = pool_row(police.page, pool_id)
    await expect(police_row.locator("td.free")).to_have_text("6")
    await expect(police_row.get_by_role("button")).to_have_count(0)  # the police cannot change counts
    await expect(police.page.locator(f"#facility-{network.facilities['a'].id}")).to_contain_text("Maison Alpha")
    await police.shot("board_1_police_before")
    await police.mark()

    shelter_row = pool_row(shelter.page, pool_id)
    await expect(shelter_row.locator("td.free")).to_have_text("6")
    await shelter.shot("board_2_shelter_before")
    await shelter_row.get_by_role("button", name="Arrival").click()
    await expect(shelter_row.locator("td.free")).to_have_text("5")
    await expect(shelter_row.locator("td").nth(2)).to_have_text("5")  # occupied 4 → 5
    await shelter.shot("board_3_shelter_after_plus_one")

    await expect(police_row.locator("td.free")).to_have_text("5")
    await expect(police_row.locator("td").nth(2)).to_have_text("5")
    await expect(police.page.locator(f"#fac-updated-{network.facilities['a'].id}")).to_have_text("updated just now")
    await expect(police_row.get_by_role("button")).to_have_count(0)
    assert await police.still_marked(), "the police board reloaded instead of swapping the row"
    await police.shot("board_4_police_after_live_update")
    # The board has a slot for every element of a pool event: nothing of it was dropped on either board.
    assert police.oob_misses == [] and shelter.oob_misses == [], (police.oob_misses, shelter.oob_misses)
    cast.assert_no_errors()


def _local_input(moment: datetime) -> str:
    """What a planner in Québec types into a datetime-local field."""
    return moment.astimezone(ZoneInfo("America/Toronto")).strftime("%Y-%m-%dT%H:%M")


async def test_operation_hold_is_confirmed_live_and_then_the_address_is_shown(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    facility_a = network.facilities["a"]
    police = await cast.login("police")
    shelter = await cast.login("shelter_a")
    # Before any hold, the planner sees Maison Alpha on the board but not where it is.
    await police.page.goto(f"{live_server.url}/facilities/{facility_a.id}")
    await expect(police.page.get_by_role("heading", name="Maison Alpha")).to_be_visible()
    await expect(police.page.get_by_text("shown only to the facility's staff")).to_be_visible()
    await expect(police.page.locator("main")).not_to_contain_text("123 rue Secrète")
    await police.shot("operation_1_police_facility_without_address")

    # The planner records an operation through the form on /operations.
    now = datetime.now(UTC)
    page = police.page
    await page.goto(live_server.url + "/operations")
    await expect(page.get_by_text("No operation yet.")).to_be_visible()
    await page.get_by_label("Code name").fill("NIGHTJAR")
    await page.get_by_label("Province").select_option("QC")
    await page.get_by_label("City (optional)").fill("Montréal")
    await page.get_by_label("Window start (Montréal time").fill(_local_input(now + timedelta(hours=1)))
    await page.get_by_label("Window end (Montréal time").fill(_local_input(now + timedelta(hours=6)))
    await page.locator("input[name='need_women']").fill("2")
    await police.shot("operation_2_police_new_operation_form")
    await page.get_by_role("button", name="Record the operation").click()
    await page.wait_for_url(re.compile(r"/operations/[0-9a-f]{32}$"))
    await expect(page.get_by_role("heading", name="NIGHTJAR")).to_be_visible()
    await expect(page.locator("#operation-holds")).to_contain_text("No hold yet.")

    # The shelter opens its hold requests: none yet.
    await shelter.page.goto(live_server.url + "/requests")
    await expect(shelter.page.locator("#requests-list")).to_contain_text("No hold request.")
    await shelter.live()
    await shelter.mark()

    # Plan (htmx preview in place), then place the holds (a plain form post back to the page).
    await page.get_by_role("button", name="Propose holds").click()
    plan = page.locator("#plan")
    await expect(plan.locator("tbody tr")).to_have_count(1)
    await expect(plan.locator("tbody tr")).to_contain_text("Maison Alpha")
    await expect(plan.locator("tbody tr td").last).to_have_text("2")
    await expect(plan).not_to_contain_text("Bravo House")
    await police.shot("operation_3_police_plan_proposed")
    await page.get_by_role("button", name="Place all these holds").click()
    holds = page.locator("#operation-holds")
    await expect(holds.locator("tbody tr")).to_have_count(1)
    await expect(holds.locator("tbody tr")).to_contain_text("Maison Alpha")
    await expect(holds.locator(".status")).to_have_text("Requested")
    await expect(holds).not_to_contain_text("123 rue Secrète")
    await police.live()
    await police.mark()
    await police.shot("operation_4_police_holds_requested")

    # The shelter's page shows the request without a reload: the banner and the refreshed list.
    banner = shelter.page.locator("#hold-banner")
    await expect(banner).to_contain_text("New hold request")
    await expect(banner).to_contain_text("2 beds")
    request = shelter.page.locator("#requests-list article.hold")
    await expect(request).to_have_count(1)
    await expect(request.get_by_role("heading")).to_contain_text("Police hold · 2 beds · police org")
    await expect(request).to_contain_text("Maison Alpha")
    await expect(request).not_to_contain_text("NIGHTJAR")  # the operation's name stays with the police
    await expect(request.locator(".status")).to_have_text("Requested")
    assert await shelter.still_marked(), "the requests page reloaded instead of receiving the hold live"
    await shelter.shot("operation_5_shelter_request_arrived_live")

    await request.get_by_role("button", name="Confirm").click()
    await expect(shelter.page.locator("#requests-list article.hold .status")).to_have_text("Confirmed")
    await shelter.shot("operation_6_shelter_confirmed")

    # The planner's operation page refreshes its holds live, now with the confidential address.
    await expect(holds.locator(".status")).to_have_text("Confirmed")
    await expect(holds.locator(".confidential")).to_contain_text("123 rue Secrète")
    await expect(holds.locator(".confidential")).to_contain_text("+1-555-000-1111")
    assert await police.still_marked(), "the operation page reloaded instead of refreshing its holds"
    await police.shot("operation_7_police_address_shown_live")

    await page.get_by_role("link", name="Maison Alpha").click()
    contact = page.get_by_role("region", name="Confidential contact")
    await expect(contact).to_contain_text("123 rue Secrète")
    await expect(contact).to_contain_text("+1-555-000-1111")
    await police.shot("operation_8_police_facility_with_address")
    cast.assert_no_errors()


@pytest.fixture(name="funded")
async def fixture_funded(sessionmaker: async_sessionmaker, network: Network) -> str:
    """A CAD fund holding 10,000.00 (as in tests/test_ledger_support.py)."""
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Emergency Fund", currency="CAD")
        await deposit(session, fund.id, amount_cents=1_000_000, source="grant", actor_user_id=network["admin"].id)
        return fund.id


async def test_hotel_request_from_a_phone_is_approved_live(
    cast: Cast, live_server: LiveServer, network: Network, funded: str
) -> None:
    # Hotel is not on the fast path; 360.00 is under the single-approval ceiling (1,500.00): one approval.
    worker = await cast.login("worker", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    approver = await cast.login("approver")
    await approver.page.goto(live_server.url + "/ledger/inbox")
    await expect(approver.page.get_by_text("Nothing is waiting.")).to_be_visible()
    await approver.live()
    await approver.mark()

    page = worker.page
    await page.goto(live_server.url + "/ledger/request")
    await expect(page.get_by_role("heading", name="Emergency fund request")).to_be_visible()
    await page.get_by_role("button", name="Open a new case").click()  # in place, keeping the form
    await expect(page.get_by_text(re.compile(r"Case C-\S+ opened"))).to_be_visible()
    case_code = await page.get_by_label("Case", exact=True).input_value()
    assert case_code.startswith("C-")
    await page.get_by_label("What for").select_option("hotel")
    await page.get_by_label("Amount (CAD)").fill("360.00")
    await page.get_by_label("Nights (hotel only)").fill("3")
    await page.get_by_label("Payee (bus line, hotel, store)").fill("Hôtel du Parc")
    await worker.shot("ledger_1_worker_phone_request_form")
    await page.get_by_role("button", name="Request", exact=True).click()
    result = page.locator("#request-result")
    await expect(result.locator(".status")).to_have_text("Waiting for approval")
    await expect(result).to_contain_text("One approval")
    await expect(result).to_contain_text("1 more approval needed from a fund approver.")
    await worker.shot("ledger_2_worker_phone_request_sent")

    # The request reaches the approver's inbox without a reload.
    item = approver.page.locator("#inbox-rows article")
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text("3 nights")
    await expect(item).to_contain_text(case_code)
    await expect(item).to_contain_text("Hôtel du Parc")
    await expect(item).to_contain_text("approvals: 0 of 1")
    assert await approver.still_marked(), "the inbox reloaded instead of receiving the request live"
    await approver.shot("ledger_3_approver_inbox_request_arrived")

    # The worker follows the request on its status page.
    await result.get_by_role("link", name="Open").tap()
    await page.wait_for_url(re.compile(r"/ledger/requests/[0-9a-f]{32}$"))
    status = page.locator("[id^='disb-status-']")
    await expect(status.locator(".status")).to_have_text("Waiting for approval")
    await expect(status).to_contain_text("$360.00")
    await worker.live()
    await worker.mark()
    await worker.shot("ledger_4_worker_phone_status_waiting")

    await item.get_by_text("Approve", exact=True).click()  # approving asks first: a second button appears
    await item.get_by_role("button", name="Yes, approve $360.00").click()
    await expect(item).to_have_count(0)  # it leaves "waiting" for "approved, not yet paid"
    moved = approver.page.locator("#inbox-approved article")
    await expect(moved.locator(".status")).to_have_text("Approved")
    await expect(moved).to_contain_text("approvals: 1 of 1")
    await approver.shot("ledger_5_approver_approved")

    await expect(status.locator(".status")).to_have_text("Approved")
    await expect(status).not_to_contain_text("more approval needed")
    # What the worker may do next follows the status: the manual payment form appears without a reload.
    await expect(page.get_by_role("button", name="Record manual payment")).to_be_visible()
    assert await worker.still_marked(), "the status page reloaded instead of changing live"
    await worker.shot("ledger_6_worker_phone_status_approved_live")
    cast.assert_no_errors()
