"""A shelter's Departure on a 390 px phone (Playwright + Chromium on `live_server`): it asks which stay ends, or
none; the chosen stay ends and the row shows the new counts; the same question in French. Screenshots go to
tests/artifacts/placements-*.png."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import expect
from sqlalchemy import update

from exchange.accounts.models import User
from tests.conftest import LiveServer, Network
from tests.test_browser import Cast, fixture_browser, fixture_cast, pool_row  # noqa: F401  (fixtures)
from tests.test_holds import later

PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def _api(server: LiveServer, method: str, path: str, person: Any, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.request(method, path, headers=person.headers, **kw)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _two_arrived(server: LiveServer, network: Network) -> str:
    """A case worker's hold of two beds at Maison Alpha (women), claimed by its staff: two open stays."""
    case = await _api(server, "POST", "/api/v1/cases", network["worker"], json={})
    body = {"pool_id": network.pools["a"].id, "beds": 2, "case_code": case["code"], "expires_at": later(hours=4)}
    hold = await _api(server, "POST", "/api/v1/holds", network["worker"], json=body)
    await _api(server, "POST", f"/api/v1/holds/{hold['id']}/claim", network["shelter_a"], json={"beds_used": 2})
    return case["code"]


async def _open_stays(server: LiveServer, network: Network) -> list[dict]:
    return await _api(server, "GET", "/api/v1/placements?open=true", network["shelter_a"])


async def test_a_departure_on_a_phone_asks_which_stay_ends(
    cast: Cast, live_server: LiveServer, network: Network, sessionmaker: Any
) -> None:
    code = await _two_arrived(live_server, network)
    pool_id = network.pools["a"].id  # capacity 10, occupied 4 + 2 arrived → 4 free
    shelter = await cast.login("shelter_a", **PHONE)
    page = shelter.page
    await page.goto(live_server.url + "/")
    row = pool_row(page, pool_id)
    await expect(row.locator("td.free")).to_have_text("4")
    await row.get_by_role("button", name="Departure").click()

    question = row.locator(".departure-choice")
    await expect(question).to_contain_text("Who is leaving?")
    await expect(question.get_by_role("button", name="End this stay")).to_have_count(2)
    await expect(question.locator("code").first).to_have_text(code)
    await expect(question.get_by_role("button", name="Someone else (no stay recorded)")).to_be_visible()
    # It fits the phone: nothing of the question runs off the right edge.
    box = await question.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    await shelter.shot("placements-1-phone-departure-asks")

    await question.get_by_role("button", name="End this stay").first.click()
    await expect(row.locator("td.free")).to_have_text("5")
    await expect(row.locator("td").nth(2)).to_have_text("5")  # occupied 6 → 5
    await expect(row).to_contain_text("Stay ended: 5 free.")
    await expect(row.locator(".departure-choice")).to_be_hidden()
    await shelter.shot("placements-2-phone-stay-ended")
    assert len(await _open_stays(live_server, network)) == 1

    # The same question in French; "someone else" counts a departure and ends no stay.
    async with sessionmaker() as session:
        await session.execute(update(User).where(User.id == network["shelter_a"].id).values(locale="fr"))
        await session.commit()
    await page.goto(live_server.url + "/")
    row = pool_row(page, pool_id)
    await row.get_by_role("button", name="Départ").click()
    question = row.locator(".departure-choice")
    await expect(question).to_contain_text("Qui part ?")
    await expect(question.get_by_role("button", name="Terminer ce séjour")).to_have_count(1)
    await shelter.shot("placements-3-phone-departure-fr")
    await question.get_by_role("button", name="Quelqu\u2019un d\u2019autre (aucun séjour enregistré)").click()
    await expect(row.locator("td.free")).to_have_text("6")
    await expect(row).to_contain_text("Départ compté")
    assert len(await _open_stays(live_server, network)) == 1
    cast.assert_no_errors()
