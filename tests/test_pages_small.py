"""Small page fixes of issue 11: the inbox's "your own request" line, the favicon, live swaps that find their
slot on the ledger pages, and the login page's language switch (its 429 answer in the chosen language)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import websockets
from litestar.testing import AsyncTestClient
from playwright.async_api import expect

from tests.conftest import PASSWORD, LiveServer, Network, login_page_session, until_live
from tests.test_browser import (
    Cast,
    fixture_browser,  # noqa: F401  (fixture)
    fixture_cast,  # noqa: F401  (fixture)
)
from tests.test_ledger_live import _recv_containing, ws_url
from tests.test_ledger_support import (
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)

OWN = "Your own request: another approver decides."


def _csrf(client: AsyncTestClient) -> str:
    return client.cookies.get("csrftoken") or ""


def _item(html: str, disbursement_id: str) -> str:
    found = re.search(rf'<article id="inbox-{disbursement_id}".*?</article>', html, re.S)
    assert found, f"no inbox item {disbursement_id}"
    return found.group(0)


def _section(html: str, element_id: str) -> str:
    found = re.search(rf'<div id="{element_id}"[^>]*>.*?</div>\s*(?:<h2|</div>)', html, re.S)
    assert found, f"no #{element_id}"
    return found.group(0)


async def test_the_own_request_line_is_only_on_the_approvers_own_requests(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    # `dual` is a case worker and an approver: their own request waits for somebody else.
    own = (
        await request_disbursement(
            client,
            network["dual"],
            fund_id,
            await new_case(client, network["dual"]),
            category="other",
            amount_cents=30_000,
        )
    ).json()
    other = (
        await request_disbursement(
            client,
            network["worker"],
            fund_id,
            await new_case(client, network["worker"]),
            category="other",
            amount_cents=30_000,
        )
    ).json()
    assert own["status"] == other["status"] == "pending_approval"
    await login_page_session(client, "dual")
    inbox = (await client.get("/ledger/inbox")).text
    assert OWN in _item(inbox, own["id"]) and OWN not in _item(inbox, other["id"])

    approved = await client.post(
        f"/ledger/requests/{other['id']}/approve", headers={"HX-Request": "true", "x-csrftoken": _csrf(client)}
    )
    assert approved.status_code == 200, approved.text
    assert "Approved" in approved.text and OWN not in approved.text
    # Someone else approves dual's own request: both are now approved, not yet paid.
    second = await client.post(f"/api/v1/disbursements/{own['id']}/approve", headers=network["approver"].headers)
    assert second.status_code == 200, second.text

    inbox = (await client.get("/ledger/inbox")).text
    approved_list = _section(inbox, "inbox-approved")
    assert f'id="inbox-{other["id"]}"' in approved_list and f'id="inbox-{own["id"]}"' in approved_list
    assert OWN not in _item(inbox, other["id"])
    assert OWN in _item(inbox, own["id"])


async def test_the_favicon_is_served_and_linked(client: AsyncTestClient, network: Network) -> None:
    asked = await client.get("/favicon.ico", follow_redirects=False)  # anonymous: a browser asks on its own
    assert asked.status_code == 301 and asked.headers["location"] == "/static/favicon.svg"
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")
    link = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert link in (await client.get("/login")).text
    await login_page_session(client, "worker")
    assert link in (await client.get("/")).text


async def test_the_login_page_switches_language_and_answers_429_in_it(
    client: AsyncTestClient, network: Network
) -> None:
    english = await client.get("/login", params={"next": "/ledger/inbox"})
    assert '<html lang="en">' in english.text
    switch = re.search(r'<nav class="languages" aria-label="Language">.*?</nav>', english.text, re.S)
    assert switch, english.text
    assert 'href="/login?lang=fr&amp;next=%2Fledger%2Finbox"' in switch.group(0) and ">Français</a>" in switch.group(0)
    assert 'aria-current="true">English</span>' in switch.group(0)

    french = await client.get("/login", params={"lang": "fr", "next": "/ledger/inbox"})
    assert '<html lang="fr">' in french.text and "<h1>Connexion</h1>" in french.text
    assert 'aria-label="Langue"' in french.text and ">English</a>" in french.text
    assert french.cookies.get("locale") == "fr"
    # The choice stays for the next pages until someone logs in, and for the throttle's refusal.
    assert '<html lang="fr">' in (await client.get("/login")).text
    form = {"username": "auditor", "password": "wrong", "next": "/", "_csrf_token": _csrf(client)}
    statuses = [(await client.post("/login", data=form)).status_code for _ in range(5)]
    assert set(statuses) == {401}, statuses
    refused = await client.post("/login", data={**form, "password": PASSWORD})
    assert refused.status_code == 429
    assert '<html lang="fr">' in refused.text
    assert "Trop de tentatives échouées. Attendez quelques minutes et réessayez." in refused.text
    assert "Too many" not in refused.text
    assert ">English</a>" in refused.text  # the switch is on the refusal too

    back = await client.get("/login", params={"lang": "en"})
    assert '<html lang="en">' in back.text and back.cookies.get("locale") == "en"
    assert (await client.get("/login", params={"lang": "de"})).status_code == 200  # unknown: ignored


@asynccontextmanager
async def _logged_in(server: LiveServer, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.get("/login")
        await http.post(
            "/login", data={"username": username, "password": PASSWORD, "_csrf_token": http.cookies["csrftoken"]}
        )
        yield http


def _ws_connect_of(page_html: str) -> str:
    found = re.search(r'ws-connect="([^"]+)"', page_html)
    assert found, "the page opens no board socket"
    return found.group(1).replace("&amp;", "&")


def _oob_ids(message: str) -> list[str]:
    """The ids of the elements a socket message swaps by id (`hx-swap-oob="true"` and the ws extension's
    default for a top-level element), and the selectors it swaps into (`afterbegin:#x`)."""
    ids = re.findall(r'<[a-z]+ id="([^"]+)"[^>]*hx-swap-oob="true"', message)
    ids += re.findall(r'hx-swap-oob="[a-z]+:#([^"]+)"', message)
    return ids


async def _page(http: httpx.AsyncClient, path: str) -> str:
    response = await http.get(path)
    assert response.status_code == 200, response.text
    return response.text


async def test_live_swaps_of_each_ledger_page_find_their_slot(
    live_server: LiveServer, network: Network, fund_id: str
) -> None:
    """A request made on the form, then approved: each page's socket (as the page opens it) gets only swaps
    whose ids exist on that page, once the form's answer is in (htmx: no `oobErrorNoTarget`)."""
    origin = {"Origin": live_server.url}
    async with _logged_in(live_server, "worker") as worker, _logged_in(live_server, "approver") as approver:
        worker_cookie, approver_cookie = (f"session={http.cookies['session']}" for http in (worker, approver))
        code = (await worker.post("/api/v1/cases", json={}, headers=network["worker"].headers)).json()["code"]
        earlier = (
            await worker.post(
                "/api/v1/disbursements",
                json={
                    "fund_id": fund_id,
                    "case_code": code,
                    "category": "other",
                    "amount_cents": 30_000,
                    "currency": "CAD",
                    "payee": "Bus",
                },
                headers=network["worker"].headers,
            )
        ).json()
        request_page = await _page(worker, "/ledger/request")
        status_page = await _page(worker, f"/ledger/requests/{earlier['id']}")
        inbox_page = await _page(approver, "/ledger/inbox")
        sockets = {
            "request": (worker_cookie, request_page),
            "status": (worker_cookie, status_page),
            "inbox": (approver_cookie, inbox_page),
        }
        opened = {
            name: websockets.connect(
                ws_url(live_server, _ws_connect_of(html)), additional_headers={"Cookie": cookie, **origin}
            )
            for name, (cookie, html) in sockets.items()
        }
        async with opened["request"] as on_request, opened["status"] as on_status, opened["inbox"] as on_inbox:
            for ws in (on_request, on_status, on_inbox):
                await until_live(ws)
            csrf = worker.cookies["csrftoken"]
            answer = await worker.post(
                "/ledger/request",
                data={
                    "fund_id": fund_id,
                    "case_code": code,
                    "category": "other",
                    "amount": "300.00",
                    "payee": "Hôtel",
                    "_csrf_token": csrf,
                },
                headers={"HX-Request": "true", "x-csrftoken": csrf},
            )
            assert answer.status_code == 200, answer.text
            assert "hx-swap-oob" not in answer.text  # the form's answer goes into #request-result only
            new_id = re.search(r'id="disb-status-([0-9a-f]{32})"', answer.text).group(1)  # type: ignore[union-attr]
            # The form's page after its answer: what it was, plus the answer in #request-result.
            slots = {
                "request": request_page + answer.text,
                "status": status_page,
                "inbox": inbox_page,
            }
            new_on_inbox = await _recv_containing(on_inbox, f'id="inbox-{new_id}"')
            for decided in (new_id, earlier["id"]):
                approved = await approver.post(
                    f"/api/v1/disbursements/{decided}/approve", headers=network["approver"].headers
                )
                assert approved.status_code == 200, approved.text
            # Each socket's last message of the run: the earlier request approved.
            messages = {
                "inbox": [
                    new_on_inbox,
                    await _recv_containing(on_inbox, f'id="inbox-{new_id}"'),
                    await _recv_containing(on_inbox, f'id="inbox-{earlier["id"]}"'),
                ],
                "request": [
                    await _recv_containing(on_request, f'id="disb-status-{new_id}"'),
                    await _recv_containing(on_request, f'id="disb-status-{earlier["id"]}"'),
                ],
                "status": [await _recv_containing(on_status, f'id="disb-status-{earlier["id"]}"')],
            }
            # The status page got nothing of the other request (its first message is the earlier one's).
            assert all(new_id not in m for m in messages["status"])
            assert 'id="status-actions-' not in "".join(messages["request"])
            assert f'id="status-actions-{earlier["id"]}"' in messages["status"][0]
            for name, received in messages.items():
                for message in received:  # in order: what one message adds, the next may swap
                    ids = _oob_ids(message)
                    assert ids, message
                    missing = [i for i in ids if f'id="{i}"' not in slots[name]]
                    assert not missing, (name, missing, message)
                    slots[name] += message


async def test_in_a_browser_the_ledger_pages_get_no_swap_without_a_slot(
    cast: Cast, live_server: LiveServer, network: Network, fund_id: str
) -> None:
    """The case worker sends a request from the form and sees it approved live; the approver's inbox takes a new
    waiting request, a fast-path one (approved at once) and the approval: no `htmx:oobErrorNoTarget` on either
    page, no console error (no favicon 404 either)."""
    approver = await cast.login("approver")
    await approver.page.goto(live_server.url + "/ledger/inbox")
    await approver.live()
    await approver.mark()
    worker = await cast.login("worker")
    page = worker.page
    await page.goto(live_server.url + "/ledger/request")
    await page.get_by_role("button", name="Open a new case").click()  # in place, keeping the form
    await expect(page.get_by_text(re.compile(r"Case C-\S+ opened"))).to_be_visible()
    await worker.live()
    await worker.mark()

    async def send(category: str, amount: str) -> None:
        await page.get_by_label("Case", exact=True).select_option(index=1)  # a sent form is empty again
        await page.get_by_label("What for").select_option(category)
        await page.get_by_label("Amount (CAD)").fill(amount)
        await page.get_by_label("Payee (bus line, hotel, store)").fill("Orléans Express")
        await page.get_by_role("button", name="Request", exact=True).click()

    await send("other", "300.00")
    result = page.locator("#request-result")
    await expect(result.locator(".status")).to_have_text("Waiting for approval")
    waiting = approver.page.locator("#inbox-rows article")
    await expect(waiting).to_have_count(1)
    await waiting.get_by_text("Approve", exact=True).click()  # approving asks first
    await waiting.get_by_role("button", name="Yes, approve $300.00").click()
    await expect(waiting).to_have_count(0)  # decided: it left "waiting"
    await expect(result.locator(".status")).to_have_text("Approved")  # live, on the form's page

    await send("calling_card", "20.00")
    await expect(result.locator(".status")).to_have_text("Approved")
    await expect(result).to_contain_text("Fast path")
    fast = approver.page.locator("#inbox-approved article", has_text="$20.00")
    await expect(fast).to_have_count(1)
    await expect(fast).to_contain_text("$20.00")
    await expect(fast).not_to_contain_text(OWN)
    await expect(approver.page.locator("#inbox-approved .empty")).to_be_hidden()  # "None." went
    assert await worker.still_marked() and await approver.still_marked()
    assert worker.oob_misses == [] and approver.oob_misses == [], (worker.oob_misses, approver.oob_misses)
    cast.assert_no_errors()
