"""Each role's home in a real browser (Playwright + Chromium on `live_server`): after logging in on a 390 x 844
phone the role's first task is on the first screen, without scrolling; the approver's count of waiting requests
rises live when someone else makes a request; screenshots of each home, desktop and phone, go to
tests/artifacts/home-<role>-<desktop|phone>.png.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from playwright.async_api import Route, expect

from tests.conftest import LiveServer, Network
from tests.test_browser import ARTIFACTS, Cast, Visitor, fixture_browser, fixture_cast  # noqa: F401  (fixtures)
from tests.test_holds import later
from tests.test_ledger_support import disbursement_body, fixture_fund_id  # noqa: F401  (fixture)

PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
# The demo's people by role, as the screenshots name them.
ROLES = {
    "shelter": "shelter_a",
    "police": "police",
    "approver": "approver",
    "case_worker": "worker",
    "auditor": "auditor",
    "admin": "admin",
    "coordinator": "coordinator",
}


async def _api(server: LiveServer, method: str, path: str, person: Any, **kw: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.request(method, path, headers=person.headers, **kw)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def operation(server: LiveServer, network: Network, code_name: str, **fields: Any) -> dict[str, Any]:
    body = {
        "code_name": code_name,
        "province": "QC",
        "city": "Montréal",
        "window_start": later(hours=1),
        "window_end": later(hours=6),
        "needs": [{"profile": "women", "count": 2}, {"profile": "family", "count": 1}],
        **fields,
    }
    return await _api(server, "POST", "/api/v1/operations", network["police"], json=body)


async def waiting_request(server: LiveServer, network: Network, fund_id: str) -> dict[str, Any]:
    """A case worker's fund request above the fast path: it waits for an approver."""
    case = await _api(server, "POST", "/api/v1/cases", network["worker"], json={})
    body = disbursement_body(fund_id, case["code"], category="other", amount_cents=30_000)
    made = await _api(server, "POST", "/api/v1/disbursements", network["worker"], json=body)
    assert made["status"] == "pending_approval"
    return made


async def hold_request(server: LiveServer, network: Network) -> dict[str, Any]:
    """A case worker asks Maison Alpha (shelter A) for a bed: it waits for the shelter's answer."""
    case = await _api(server, "POST", "/api/v1/cases", network["worker"], json={})
    body = {"pool_id": network.pools["a"].id, "beds": 1, "case_code": case["code"], "expires_at": later(hours=8)}
    return await _api(server, "POST", "/api/v1/holds", network["worker"], json=body)


async def shoot(visitor: Visitor, role: str, device: str) -> None:
    await visitor.page.screenshot(path=str(ARTIFACTS / f"home-{role}-{device}.png"), full_page=True)


async def test_on_a_phone_each_role_finds_its_first_task_without_scrolling(
    cast: Cast, live_server: LiveServer, network: Network, fund_id: str
) -> None:
    await operation(live_server, network, "OLDOWL")
    newest = await operation(live_server, network, "NIGHTJAR")
    first_waiting = await waiting_request(live_server, network, fund_id)
    await waiting_request(live_server, network, fund_id)

    # Shelter staff: their own pool's Arrival button, with the free count beside it.
    shelter = await cast.login("shelter_a", **PHONE)
    assert shelter.page.url == live_server.url + "/home"
    row = shelter.page.locator(f"#pool-{network.pools['a'].id}")
    arrival = row.get_by_role("button", name="Arrival")
    await expect(arrival).to_be_in_viewport()
    await expect(row.locator("td.free")).to_have_text("6")
    await expect(row.locator("td.free")).to_be_in_viewport()
    await shoot(shelter, "shelter", "phone")

    # Police: the newest operation's coverage, per needed group.
    police = await cast.login("police", **PHONE)
    coverage = police.page.locator(f"#home-operation-{newest['id']} table.home-coverage")
    await expect(coverage).to_contain_text("Women")
    await expect(coverage).to_be_in_viewport()
    await shoot(police, "police", "phone")

    # Approver: the request that waited longest, and the count beside "Approvals".
    approver = await cast.login("approver", **PHONE)
    await expect(approver.page.locator(f"#home-waiting-{first_waiting['id']}")).to_be_in_viewport()
    await expect(approver.page.locator("#nav-count-approvals")).to_have_text("2")
    await shoot(approver, "approver", "phone")

    for role in ("case_worker", "auditor", "admin", "coordinator"):
        visitor = await cast.login(ROLES[role], **PHONE)
        await expect(visitor.page.locator("main .home-section h2").first).to_be_in_viewport()
        await shoot(visitor, role, "phone")
    # Nothing on a home pushes a phone's page sideways.
    for visitor in cast.visitors:
        width = await visitor.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (visitor.name, width)
    cast.assert_no_errors()


async def test_an_open_hold_request_comes_first_and_the_arrival_button_stays_on_screen(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    request = await hold_request(live_server, network)
    shelter = await cast.login("shelter_a", **PHONE)
    card = shelter.page.locator(f"#home-hold-{request['id']}")
    await expect(card.get_by_role("button", name="Confirm")).to_be_in_viewport()
    await expect(shelter.page.locator("#nav-count-requests")).to_have_text("1")
    row = shelter.page.locator(f"#pool-{network.pools['a'].id}")
    await expect(row.get_by_role("button", name="Arrival")).to_be_in_viewport()
    await shoot(shelter, "shelter-request", "phone")
    # An arrival: the free count beside the button goes down, in place.
    await shelter.live()
    await shelter.mark()
    await row.get_by_role("button", name="Arrival").click()
    await expect(row.locator("td.free")).to_have_text("4")  # 10 - 4 occupied - 1 held - 1 arrival
    # Confirming from the home comes back to it, with nothing left waiting.
    await card.get_by_role("button", name="Confirm").click()
    await shelter.page.wait_for_url(live_server.url + "/home")
    await expect(shelter.page.locator(f"#home-hold-{request['id']}")).to_have_count(0)
    await expect(shelter.page.locator("#nav-count-requests")).to_have_text("")
    # The board's live row came with its "updated just now", which the home has a place for too (the hold
    # fragments for the requests page have none here, by design: templates/fragments/hold_oob.html).
    assert not [m for m in shelter.oob_misses if "fac-updated" in m], shelter.oob_misses
    cast.assert_no_errors()


async def test_a_new_request_raises_the_approvers_count_live(
    cast: Cast, live_server: LiveServer, network: Network, fund_id: str
) -> None:
    await waiting_request(live_server, network, fund_id)
    approver = await cast.login("approver", **PHONE)
    count = approver.page.locator("#nav-count-approvals")
    await expect(count).to_have_text("1")
    await approver.live()
    await approver.mark()
    made = await waiting_request(live_server, network, fund_id)
    await expect(count).to_have_text("2")
    # On the home, the list behind the count shows it too; the page did not reload.
    await expect(approver.page.locator("#home-approvals")).to_contain_text("2 requests wait")
    await expect(approver.page.locator(f"#home-waiting-{made['id']}")).to_be_visible()
    assert await approver.still_marked()
    # On a page without a live part of its own (the spending report), the count is live too.
    await approver.page.goto(live_server.url + "/ledger/report")
    await approver.live()
    await expect(count).to_have_text("2")
    await waiting_request(live_server, network, fund_id)
    await expect(count).to_have_text("3")

    # A slow network (each read of the counts takes half a second) and a run of requests a little slower than the
    # page's wait before it reads: each new one comes while the last read is on its way. Every answer finds its
    # slot, and the count ends on the number as it is.
    async def slowly(route: Route) -> None:
        await asyncio.sleep(0.5)
        await route.continue_()

    await approver.page.route("**/home/counts", slowly)
    for _ in range(5):
        await waiting_request(live_server, network, fund_id)
        await asyncio.sleep(0.32)  # the pace of the run, not a wait for readiness
    await expect(count).to_have_text("8")
    assert approver.oob_misses == [], approver.oob_misses
    cast.assert_no_errors()


@pytest.mark.parametrize("role", list(ROLES))
async def test_desktop_screenshot_of_each_home(
    cast: Cast, live_server: LiveServer, network: Network, fund_id: str, role: str
) -> None:
    await operation(live_server, network, "NIGHTJAR")
    await waiting_request(live_server, network, fund_id)
    await hold_request(live_server, network)
    visitor = await cast.login(ROLES[role], **DESKTOP)
    await expect(visitor.page.locator("main .home-section").first).to_be_visible()
    await shoot(visitor, role, "desktop")
    cast.assert_no_errors()
