"""Forms that forgive, in a real browser: a failure is said (offline: a message with "Try again" and the Offline
badge), a double click acts once, and a step that cannot be undone asks first and can be called off.
"""

from __future__ import annotations

import re
from datetime import timedelta

from litestar.testing import AsyncTestClient
from playwright.async_api import Locator, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.holds_models import Agreement, Hold
from beds.timeutil import utcnow
from tests.conftest import LiveServer, Network
from tests.test_browser import (  # noqa: F401  (fixtures of the module)
    Cast,
    fixture_browser,
    fixture_cast,
    pool_row,
)


def arrival(row: Locator) -> Locator:
    """The row's "one more bed occupied" tap (fragments/pool_row.html)."""
    return row.locator("form.arrival button[type=submit]")


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_an_offline_tap_says_so_shows_offline_and_can_be_tried_again(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    pool_id = network.pools["a"].id  # 10 beds, 4 occupied: 6 free
    shelter = await cast.login("shelter_a", **PHONE)
    page = shelter.page
    await page.goto(live_server.url + "/")
    await shelter.live()
    row = pool_row(page, pool_id)
    await expect(row.locator("td.free")).to_have_text("6")

    await shelter.context.set_offline(True)
    await arrival(row).click()
    message = page.locator("#messages .flash.error")
    await expect(message).to_contain_text("Could not reach the server: nothing was changed.")
    await expect(page.locator("#live-status")).to_have_text("Offline")
    await expect(row.locator("td.free")).to_have_text("6")  # nothing changed, and the page does not pretend
    # The button is usable again once the request has failed.
    await expect(arrival(row)).to_be_enabled()
    await shelter.shot("forms_1_offline_message")

    await shelter.context.set_offline(False)
    await message.get_by_role("button", name="Try again").click()
    await expect(row.locator("td.free")).to_have_text("5")
    await expect(page.locator("#live-status")).to_have_text("Live")
    await expect(page.locator("#messages .flash.error")).to_have_count(0)
    await shelter.shot("forms_2_back_online_retried")


async def test_a_refused_htmx_request_shows_the_servers_sentence_with_try_again(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    """Any htmx request the server refuses (here a 404) says so in #messages, translated, and leaves the page's
    content in place instead of swapping an error into it."""
    worker = await cast.login("worker")
    page = worker.page
    await page.goto(live_server.url + "/account")
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_be_visible()
    await page.evaluate("htmx.ajax('GET', '/no-such-page', {target: 'main', swap: 'innerHTML'})")
    message = page.locator("#messages .flash.error")
    await expect(message).to_contain_text("does not exist")
    await expect(heading).to_be_visible()
    await message.get_by_role("button", name="Dismiss").click()
    await expect(message).to_have_count(0)
    # The same in French: the sentence comes from the server, in the page's language.
    await page.get_by_role("button", name="Français").click()
    await page.wait_for_url(live_server.url + "/account")  # the language switch stays on the page
    await page.evaluate("htmx.ajax('GET', '/no-such-page', {target: 'main', swap: 'innerHTML'})")
    await expect(message).to_contain_text("n'existe pas")
    await expect(message.get_by_role("button", name="Réessayer")).to_be_visible()
    await worker.shot("forms_3_refused_with_message_fr")


async def test_a_double_click_makes_one_agreement(
    cast: Cast, live_server: LiveServer, network: Network, sessionmaker: async_sessionmaker
) -> None:
    shelter = await cast.login("shelter_a", **PHONE)
    page = shelter.page
    await page.goto(live_server.url + "/agreements")
    await page.get_by_label("Beds kept").fill("2")
    await page.get_by_label("Partner organisation").select_option(label="police org")
    await page.get_by_role("button", name="Make the agreement").dblclick()
    await expect(page.locator("table")).to_contain_text("police org")
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Agreement))
    assert count == 1
    cast.assert_no_errors()


async def _operation_with_a_hold(client: AsyncTestClient, network: Network) -> tuple[str, str]:
    now = utcnow()
    operation = await client.post(
        "/api/v1/operations",
        json={
            "code_name": "HERON",
            "province": "QC",
            "window_start": (now + timedelta(hours=1)).isoformat(),
            "window_end": (now + timedelta(hours=6)).isoformat(),
            "needs": [{"profile": "women", "count": 2}],
        },
        headers=network["police"].headers,
    )
    assert operation.status_code == 201, operation.text
    hold = await client.post(
        "/api/v1/holds",
        json={
            "pool_id": network.pools["a"].id,
            "beds": 2,
            "operation_id": operation.json()["id"],
            "expires_at": (now + timedelta(hours=5)).isoformat(),
        },
        headers=network["police"].headers,
    )
    assert hold.status_code == 201, hold.text
    return operation.json()["id"], hold.json()["id"]


async def test_release_asks_first_and_cancel_keeps_the_hold(
    cast: Cast, live_server: LiveServer, network: Network, client: AsyncTestClient, sessionmaker: async_sessionmaker
) -> None:
    operation_id, hold_id = await _operation_with_a_hold(client, network)
    police = await cast.login("police", **PHONE)
    page = police.page
    await page.goto(f"{live_server.url}/operations/{operation_id}")
    holds = page.locator("#operation-holds")
    await expect(holds.locator(".status")).to_have_text("Requested")

    await holds.get_by_role("button", name="Release", exact=True).click()
    question = holds.get_by_role("group", name="Release these beds?")
    await expect(question).to_be_visible()
    await expect(question.get_by_role("button", name="Yes, release")).to_be_focused()
    await police.shot("forms_4_release_asks_first")
    await question.get_by_role("button", name="Cancel").click()
    await expect(question).to_be_hidden()
    await expect(holds.get_by_role("button", name="Release", exact=True)).to_be_focused()
    async with sessionmaker() as session:
        hold = await session.get(Hold, hold_id)
        assert hold is not None and hold.status == "requested"

    await holds.get_by_role("button", name="Release", exact=True).click()
    await question.get_by_role("button", name="Yes, release").dblclick()
    await page.wait_for_url(re.compile(rf"/operations/{operation_id}$"))
    await expect(holds.locator(".status")).to_have_text("Released")
    # One release, no second-click error page or message.
    await expect(page.locator("#messages .flash.error")).to_have_count(0)
    await police.shot("forms_5_released")
    cast.assert_no_errors()


async def test_a_refused_hold_step_comes_back_on_the_page_with_a_message(
    cast: Cast, live_server: LiveServer, network: Network, client: AsyncTestClient, sessionmaker: async_sessionmaker
) -> None:
    """The request was answered meanwhile (unseen by this page): "Confirm" comes back on the requests page with
    the reason, never on a bare error page, in the page's language."""
    _operation_id, hold_id = await _operation_with_a_hold(client, network)
    shelter = await cast.login("shelter_a")
    page = shelter.page
    await page.goto(live_server.url + "/requests")
    request = page.locator(f"#hold-{hold_id}")
    await expect(request.locator(".status")).to_have_text("Requested")
    async with sessionmaker() as session:  # straight to the table: no live event refreshes the page
        hold = await session.get(Hold, hold_id)
        assert hold is not None
        hold.status = "declined"
        hold.decline_reason = "full"
        await session.commit()
    await request.get_by_role("button", name="Confirm").click()
    await expect(page.locator("main .error[role=alert]")).to_contain_text("This hold is declined")
    await expect(page.get_by_role("heading", name="Hold requests", level=1)).to_be_visible()
    await expect(page.locator(f"#hold-{hold_id} .status")).to_have_text("Declined")
    await shelter.shot("forms_6_refused_step_on_the_page")
