"""Pages that were cut off catch up, and every tab of every approver follows a decision, in a real browser.

The socket is cut between the page and the server by a Playwright route that forwards the page's websocket while
"up", closes it (1013, as the hub does with a socket that fell behind) when cut, and refuses the page's reconnects
until it is up again: what changed meanwhile never reaches the page as an event, only through its catching up
(exchange/web/static/app.js `refreshLiveParts`). Pages must not reload for it (`Visitor.mark`/`still_marked`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from playwright.async_api import Page, WebSocketRoute, expect

from tests.conftest import LiveServer, Network
from tests.test_browser import (  # noqa: F401  (fixtures)
    Cast,
    Visitor,
    _on_console,
    fixture_browser,
    fixture_cast,
    fixture_funded,
)
from tests.test_ledger_support import disbursement_body

# The ws extension waits longer after each refused reconnect (up to seconds): the way back gets time.
BACK_WITHIN_MS = 30_000
# Every open and close of the page's socket, in order: the socket must not be reopened by the catching up.
SOCKET_LOG = """
window.__socket = [];
document.addEventListener("htmx:wsOpen", () => window.__socket.push("open"));
document.addEventListener("htmx:wsClose", (e) => window.__socket.push("close " + e.detail.event.code));
"""


@dataclass
class SocketSwitch:
    """Between one page and the server: forwards its board socket while up."""

    up: bool = True
    routes: list[tuple[WebSocketRoute, WebSocketRoute]] = field(default_factory=list)

    async def attach(self, page: Page) -> None:
        await page.add_init_script(SOCKET_LOG)
        await page.route_web_socket("**/board/ws*", self._route)

    async def _route(self, ws: WebSocketRoute) -> None:
        if not self.up:
            await ws.close(code=1013, reason="network down")
            return
        self.routes.append((ws, ws.connect_to_server()))

    async def cut(self) -> None:
        self.up = False
        for page_side, server_side in self.routes:
            await page_side.close(code=1013, reason="network down")
            await server_side.close()
        self.routes.clear()

    def restore(self) -> None:
        self.up = True


async def cut_off(visitor: Visitor, switch: SocketSwitch) -> None:
    await switch.cut()
    await expect(visitor.page.locator("#live-status.off")).to_have_text("Offline")


async def back(visitor: Visitor, switch: SocketSwitch) -> None:
    switch.restore()
    await expect(visitor.page.locator("#live-status.on")).to_be_visible(timeout=BACK_WITHIN_MS)


async def reopened_once(page: Page) -> None:
    """The socket was opened, closed by the cut (and refused while down), and opened once more: reading the
    live parts again did not replace the element holding it, which would have closed and reopened it."""
    log: list[str] = await page.evaluate("window.__socket")
    assert log[0] == "open" and log[-1] == "open" and log.count("open") == 2, log
    assert all(entry == "close 1013" for entry in log[1:-1]), log


async def test_the_board_shows_what_changed_while_its_socket_was_down(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    pool_id = network.pools["a"].id  # Maison Alpha, women: capacity 10, occupied 4 → 6 free
    police = await cast.login("police")
    switch = SocketSwitch()
    await switch.attach(police.page)
    await police.page.goto(live_server.url + "/")
    await police.live()
    row = police.page.locator(f"#pool-{pool_id}")
    await expect(row.locator("td.free")).to_have_text("6")
    ontario = police.page.locator("#province-ON")
    await ontario.locator("summary").first.click()  # the reader folds Ontario away
    await expect(ontario).not_to_have_attribute("open", "")
    await police.mark()

    await cut_off(police, switch)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        for _ in range(2):  # two arrivals the police board is not told about
            response = await http.post(
                f"/api/v1/pools/{pool_id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_a"].headers
            )
            assert response.status_code == 200
    await expect(row.locator("td.free")).to_have_text("6")  # nothing reached it while cut off
    await police.shot("catchup_board_1_offline")

    await back(police, switch)
    await expect(row.locator("td.free")).to_have_text("4")
    await expect(row.locator("td").nth(2)).to_have_text("6")  # occupied 4 → 6
    # The summary above the cards is read again too: 15 free beds on the board before, 13 now.
    await expect(police.page.locator("#board-list .summary")).to_contain_text("13 free beds")
    await expect(ontario).not_to_have_attribute("open", "")  # as the reader left it
    assert await police.still_marked(), "the board reloaded instead of reading its list again"
    await police.shot("catchup_board_2_back")

    # Live updates go on after the catching up, on the same socket.
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        await http.post(
            f"/api/v1/pools/{pool_id}/adjust", json={"occupied_delta": -1}, headers=network["shelter_a"].headers
        )
    await expect(row.locator("td.free")).to_have_text("5")
    await reopened_once(police.page)
    assert police.oob_misses == []
    cast.assert_no_errors()


async def test_the_facility_page_shows_what_changed_while_its_socket_was_down(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    facility = network.facilities["a"]
    pool_id = network.pools["a"].id
    staff = await cast.login("shelter_a")
    switch = SocketSwitch()
    await switch.attach(staff.page)
    await staff.page.goto(live_server.url + f"/facilities/{facility.id}")
    await staff.live()
    row = staff.page.locator(f"#pool-{pool_id}")
    await expect(row.locator("td.free")).to_have_text("6")
    history = staff.page.locator("#facility-history")
    await expect(history).not_to_contain_text("4 → 5")
    # What the person was typing in the counts form is not a live part: it stays.
    await staff.page.get_by_label("Out of service").first.fill("1")
    await staff.mark()

    await cut_off(staff, switch)
    async with httpx.AsyncClient(base_url=live_server.url) as http:  # a colleague's arrival, from another device
        response = await http.post(
            f"/api/v1/pools/{pool_id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_a"].headers
        )
        assert response.status_code == 200
    await back(staff, switch)

    await expect(row.locator("td.free")).to_have_text("5")
    await expect(history).to_contain_text("4 → 5")  # the change is in "Recent changes" too
    # The row read again keeps its Arrival / Departure, and they work.
    await row.get_by_role("button", name="Arrival").click()
    await expect(row.locator("td.free")).to_have_text("4")
    await expect(staff.page.get_by_label("Out of service").first).to_have_value("1")
    assert await staff.still_marked(), "the facility page reloaded instead of reading its live parts again"
    await reopened_once(staff.page)
    await staff.shot("catchup_facility_back")
    cast.assert_no_errors()


async def second_tab(cast: Cast, visitor: Visitor, url: str) -> Visitor:
    """Another tab of the same person (same browser context, same session), its errors watched like the first's."""
    page = await visitor.context.new_page()
    tab = Visitor(visitor.name + " (second tab)", visitor.context, page)
    cast.visitors.append(tab)
    page.on("console", lambda message: _on_console(tab, message))
    page.on("pageerror", lambda error: tab.errors.append(f"pageerror: {error}"))
    await page.goto(url)
    return tab


async def test_a_decision_moves_the_request_in_every_inbox_tab(
    cast: Cast, live_server: LiveServer, network: Network, funded: str
) -> None:
    inbox = live_server.url + "/ledger/inbox"
    approver = await cast.login("approver")
    await approver.page.goto(inbox)
    other_tab = await second_tab(cast, approver, inbox)
    colleague = await cast.login("approver_community", viewport={"width": 390, "height": 844}, is_mobile=True)
    await colleague.page.goto(inbox)
    everyone = (approver, other_tab, colleague)
    for visitor in everyone:
        await visitor.live()
        await visitor.mark()

    worker = network["worker"]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        code = (await http.post("/api/v1/cases", json={}, headers=worker.headers)).json()["code"]
        created = await http.post(
            "/api/v1/disbursements",
            json=disbursement_body(funded, code, category="other", amount_cents=30_000),
            headers=worker.headers,
        )
        assert created.status_code in (200, 201), created.text
        request_id = created.json()["id"]
    for visitor in everyone:
        waiting = visitor.page.locator(f"#inbox-rows #inbox-{request_id}")
        await expect(waiting).to_contain_text(code)

    item = approver.page.locator(f"#inbox-{request_id}")
    await item.get_by_text("Approve", exact=True).click()
    await item.get_by_role("button", name="Yes, approve $300.00").click()

    for visitor in everyone:  # the deciding tab by its answer, the others by the live event
        page = visitor.page
        await expect(page.locator(f"#inbox-rows #inbox-{request_id}")).to_have_count(0)
        moved = page.locator(f"#inbox-approved #inbox-{request_id}")
        await expect(moved).to_have_count(1)
        await expect(moved.locator(".status")).to_have_text("Approved")
        await expect(moved).to_contain_text("approvals: 1 of 1")
        assert await visitor.still_marked(), f"{visitor.name}'s inbox reloaded instead of moving the request"
        assert visitor.oob_misses == [], (visitor.name, visitor.oob_misses)
    # The deciding tab got its own answer too: the event, published before the answer left, waited for it
    # instead of taking the answer's form out of the page (htmx would then have dropped the answer).
    await expect(approver.page.locator("#inbox-message")).to_contain_text("Approved: the request moved")
    await expect(other_tab.page.locator("#inbox-message")).to_be_empty()
    await other_tab.shot("catchup_inbox_other_tab_moved")
    await colleague.shot("catchup_inbox_colleague_moved")
    cast.assert_no_errors()


async def test_the_inbox_catches_up_and_keeps_a_reason_being_typed(
    cast: Cast, live_server: LiveServer, network: Network, funded: str
) -> None:
    worker = network["worker"]

    async def new_request(http: httpx.AsyncClient, amount_cents: int) -> tuple[str, str]:
        code = (await http.post("/api/v1/cases", json={}, headers=worker.headers)).json()["code"]
        created = await http.post(
            "/api/v1/disbursements",
            json=disbursement_body(funded, code, category="other", amount_cents=amount_cents),
            headers=worker.headers,
        )
        assert created.status_code in (200, 201), created.text
        return created.json()["id"], code

    approver = await cast.login("approver")
    switch = SocketSwitch()
    await switch.attach(approver.page)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        first, _ = await new_request(http, 30_000)
        await approver.page.goto(live_server.url + "/ledger/inbox")
        await approver.live()
        await approver.mark()
        reason = approver.page.locator(f"#inbox-{first}").get_by_label("Reason for rejecting")
        await reason.fill("Already paid by the parish")

        await cut_off(approver, switch)
        second, second_code = await new_request(http, 40_000)
        await expect(approver.page.locator(f"#inbox-{second}")).to_have_count(0)  # not told while cut off
        await back(approver, switch)

    await expect(approver.page.locator(f"#inbox-rows #inbox-{second}")).to_contain_text(second_code)
    await expect(reason).to_have_value("Already paid by the parish")
    assert await approver.still_marked(), "the inbox reloaded instead of reading its lists again"
    await reopened_once(approver.page)
    cast.assert_no_errors()
