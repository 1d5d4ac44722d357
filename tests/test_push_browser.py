"""Web Push in a real browser: an approver turns notifications on from the account page (the page registers its
service worker and sends its subscription to the server), a case worker asks for a hotel night from a phone,
the tests' push service receives "1 request waiting" for that approver (VAPID checked, payload decrypted), and
the inbox shows the request.

Headless Chromium has no push service of its own: an init script (not a page script; the CSP does not apply to
it) stands in for the browser's `PushManager`, handing the page a subscription whose endpoint and keys come
from tests/push_service.py, and records the key the page subscribed with."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from exchange.oncall.models import PushSubscription
from exchange.settings import Settings
from tests.conftest import LiveServer, Network, eventually
from tests.push_service import PushService, vapid_keys
from tests.test_browser import (
    Cast,
    fixture_browser,  # noqa: F401  (fixture)
    fixture_funded,  # noqa: F401  (fixture)
)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
VAPID_PUBLIC, VAPID_PRIVATE = vapid_keys()

# The browser's push service, replaced: `subscribe` answers with the tests' subscription once the page asks with
# a VAPID key, `getSubscription` with it afterwards. `toJSON()` is the Push API's shape.
FAKE_PUSH_MANAGER = """
(() => {
  const given = %s;
  let current = null;
  window.__subscribedWith = null;
  function wrap(json) {
    return { endpoint: json.endpoint, toJSON: () => json, unsubscribe: async () => { current = null; return true; } };
  }
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.__subscribedWith = btoa(String.fromCharCode(...key))
      .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    window.__userVisibleOnly = options.userVisibleOnly;
    current = wrap(given);
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
})();
"""


@pytest.fixture(name="push_service", scope="module")
def fixture_push_service() -> Iterator[PushService]:
    with PushService(VAPID_PUBLIC) as service:
        yield service


@pytest.fixture(name="push_server", scope="module")
def fixture_push_server(settings: Settings, push_service: PushService) -> Iterator[LiveServer]:
    configured = replace(
        settings,
        vapid_public_key=VAPID_PUBLIC,
        vapid_private_key=VAPID_PRIVATE,
        push_services=(push_service.url,),
    )
    with LiveServer(configured) as server:
        yield server


@pytest.fixture(name="push_cast")
async def fixture_push_cast(browser: Browser, push_server: LiveServer) -> AsyncIterator[Cast]:
    push_server.empty_stores()
    cast = Cast(browser, push_server)
    yield cast
    for visitor in cast.visitors:
        if visitor.errors:
            print(f"{visitor.name}: errors {visitor.errors}")
    for visitor in cast.visitors:
        await visitor.context.close()


async def test_an_approver_turns_notifications_on_and_a_hotel_night_request_reaches_the_phone(
    push_cast: Cast,
    push_server: LiveServer,
    push_service: PushService,
    network: Network,
    funded: str,
    sessionmaker: async_sessionmaker,
) -> None:
    subscription = push_service.subscription()
    token = push_service.token_of(subscription)
    approver = await push_cast.login("approver", permissions=["notifications"], **PHONE)
    await approver.context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(subscription))
    page = approver.page
    await page.goto(push_server.url + "/account")
    await expect(page.get_by_text("No browser gets notifications yet.")).to_be_visible()
    await page.get_by_role("button", name="Turn on notifications").click()
    await expect(page.get_by_text("Notifications are on for this browser.")).to_be_visible()
    await expect(page.locator("#push-subscriptions li")).to_contain_text("A browser through 127.0.0.1")
    assert await page.evaluate("window.__subscribedWith") == VAPID_PUBLIC
    assert await page.evaluate("window.__userVisibleOnly") is True
    scope = await page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r && r.scope)")
    assert scope == push_server.url + "/"
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the account page scrolls sideways on a phone ({width}px)"
    await approver.shot("push_1_approver_notifications_on")
    async with sessionmaker() as session:
        stored = (await session.execute(select(PushSubscription))).scalars().all()
    assert [(s.user_id, s.endpoint) for s in stored] == [(network["approver"].id, subscription["endpoint"])]

    worker = await push_cast.login("worker", **PHONE)
    form = worker.page
    await form.goto(push_server.url + "/ledger/request")
    await form.get_by_role("button", name="Open a new case").click()
    await expect(form.get_by_label("Case", exact=True)).not_to_have_value("")
    case_code = await form.get_by_label("Case", exact=True).input_value()
    await form.get_by_label("What for").select_option("hotel")
    await form.get_by_label("Amount (CAD)").fill("180.00")
    await form.get_by_label("Nights (hotel only)").fill("1")
    await form.get_by_label("Payee (bus line, hotel, store)").fill("Hôtel du Parc")
    await form.get_by_role("button", name="Request", exact=True).click()
    await expect(form.locator("#request-result .status")).to_have_text("Waiting for approval")

    async def pushed() -> list:
        return push_service.for_token(token)

    received = await eventually(pushed, within_s=15)
    assert len(received) == 1, push_service.refused
    payload = received[0].payload
    assert payload == {"title": "Refuge Exchange", "body": "1 request waiting, open the app", "url": "/ledger/inbox"}
    assert case_code not in json.dumps(payload)

    await page.goto(push_server.url + payload["url"])
    item = page.locator("#inbox-rows article")
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text(case_code)
    await expect(item).to_contain_text("Hôtel du Parc")
    await approver.shot("push_2_approver_inbox_after_push")
    push_cast.assert_no_errors()


async def test_turning_notifications_off_removes_the_subscription(
    push_cast: Cast, push_server: LiveServer, push_service: PushService, network: Network
) -> None:
    subscription = push_service.subscription()
    approver = await push_cast.login("approver", permissions=["notifications"])
    await approver.context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(subscription))
    page = approver.page
    await page.goto(push_server.url + "/account")
    await page.get_by_role("button", name="Turn on notifications").click()
    await expect(page.locator("#push-subscriptions li")).to_have_count(1)
    await page.get_by_role("button", name="Turn off").click()
    await expect(page.get_by_text("No browser gets notifications yet.")).to_be_visible()
    await page.reload()
    await expect(page.get_by_text("No browser gets notifications yet.")).to_be_visible()
    push_cast.assert_no_errors()


async def test_a_shelter_sets_its_hours_on_a_phone_in_french_and_an_error_keeps_what_was_typed(
    push_cast: Cast, push_server: LiveServer, network: Network
) -> None:
    staff = await push_cast.login("shelter_a", **PHONE)
    page = staff.page
    await page.goto(push_server.url + f"/facilities/{network.facilities['a'].id}")
    await page.get_by_role("button", name="Français").click()
    await page.get_by_role("link", name="Quand nous répondons et qui est de garde").click()
    await expect(page.get_by_role("heading", name="Quand nous répondons · Maison Alpha")).to_be_visible()
    await page.get_by_label("Nous répondons 24 h sur 24 (24/7)").uncheck()
    monday = page.get_by_role("group", name="Lundi")
    await monday.get_by_label("ouvre à").fill("08:30")
    await page.get_by_label("Adresses de garde").fill("nuit@alpha.test\nbackup@alpha.test")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_text("Donnez une heure de début et une heure de fin")).to_be_visible()
    await expect(monday.get_by_label("ouvre à")).to_have_value("08:30")
    await expect(page.get_by_label("Adresses de garde")).to_have_value("nuit@alpha.test\nbackup@alpha.test")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the form scrolls sideways on a phone ({width}px)"
    await staff.shot("answering_1_error_kept_fr")
    await monday.get_by_label("ferme à").fill("17:00")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_text("Enregistré. Le tableau")).to_be_visible()
    await expect(monday.get_by_label("ferme à")).to_have_value("17:00")
    # The refused form came back as a page with status 422, which Chromium logs as a failed load; nothing else.
    assert [e for e in staff.errors if "status of 422" not in e] == []


async def test_an_approver_puts_a_colleague_on_call_tonight_from_a_phone(
    push_cast: Cast, push_server: LiveServer, network: Network
) -> None:
    approver = await push_cast.login("approver", **PHONE)
    page = approver.page
    await page.goto(push_server.url + "/home")
    await page.get_by_role("link", name="On-call roster").click()
    await expect(page.get_by_text("Nobody is on call yet")).to_be_visible()
    await page.get_by_label("Approver").select_option(label="Approver Community")
    await page.get_by_role("button", name="Add to the roster").click()
    row = page.locator("#roster tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Approver Community")
    await expect(row).to_contain_text("tonight")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the roster scrolls sideways on a phone ({width}px)"
    await approver.shot("roster_1_tonight_on_a_phone")
    await row.get_by_role("button", name="Remove").click()  # asks first
    await row.get_by_role("button", name="Yes, remove").click()
    await expect(page.get_by_text("Nobody is on call yet")).to_be_visible()
    push_cast.assert_no_errors()
