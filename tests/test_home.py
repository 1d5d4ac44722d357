"""Each role's home (`/home`), the login that lands there, and the navigation's counts, on the page and live.

Through the HTML pages of the test client (a session from the login form), in English and in French; the live
counts through a real board socket on `live_server`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import websockets
from litestar.testing import AsyncTestClient

from tests.conftest import PASSWORD, LiveServer, Network, log_in_page, page_socket, until_live, ws_url
from tests.test_holds import hold, later, make_operation
from tests.test_holds import new_case as hold_case
from tests.test_ledger_support import disbursement_body, fixture_fund_id  # noqa: F401  (fixture)
from tests.test_ledger_support import new_case as fund_case

FR = {"Accept-Language": "fr-CA,fr;q=0.9"}


async def log_in(client: AsyncTestClient, username: str, next: str | None = None) -> httpx.Response:
    """The login form as a browser posts it: with the page's `next`, or none."""
    await client.get("/login")
    data = {"username": username, "password": PASSWORD, "_csrf_token": client.cookies.get("csrftoken")}
    if next is not None:
        data["next"] = next
    return await client.post("/login", data=data, follow_redirects=False)


async def home_of(client: AsyncTestClient, username: str, headers: dict[str, str] | None = None) -> str:
    client.cookies.clear()
    assert (await log_in(client, username)).headers["location"] == "/home"
    page = await client.get("/home", headers=headers or {})
    assert page.status_code == 200, page.text
    return page.text


def nav_count(html: str, name: str) -> str:
    """The number shown beside a navigation entry ("" when nothing waits); fails if the count is absent."""
    found = re.search(rf'<span id="nav-count-{name}" class="nav-count"[^>]*>([^<]*)</span>', html)
    assert found, f"no {name} count in the navigation"
    return found.group(1)


async def case_hold(client: AsyncTestClient, network: Network, beds: int = 1) -> dict[str, Any]:
    """A case worker's request for beds at Maison Alpha (shelter A): it waits for the shelter's answer."""
    code = await hold_case(client, network)
    response = await hold(
        client, network, "worker", pool_id=network.pools["a"].id, beds=beds, case_code=code, expires_at=later(hours=8)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def waiting_request(client: AsyncTestClient, network: Network, fund_id: str, who: str = "worker") -> dict:
    """A fund request above the fast path: it waits for an approver."""
    code = await fund_case(client, network[who])
    response = await client.post(
        "/api/v1/disbursements",
        json=disbursement_body(fund_id, code, category="other", amount_cents=30_000),
        headers=network[who].headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending_approval"
    return response.json()


# --- login ------------------------------------------------------------------------------------------------------


async def test_login_lands_on_the_home_unless_a_page_was_asked_for(client: AsyncTestClient, network: Network) -> None:
    assert (await log_in(client, "police")).headers["location"] == "/home"
    client.cookies.clear()
    # The site's root is where every visit starts (a visit to / without a session comes back with next=/).
    assert (await log_in(client, "police", next="/")).headers["location"] == "/home"
    client.cookies.clear()
    assert (await log_in(client, "police", next="/operations")).headers["location"] == "/operations"
    client.cookies.clear()
    assert (await log_in(client, "police", next="https://evil.example/")).headers["location"] == "/home"
    # The brand link goes home; the board stays at /.
    page = await client.get("/home")
    assert '<a class="brand" href="/home">' in page.text
    assert (await client.get("/")).status_code == 200


async def test_home_needs_a_login(client: AsyncTestClient, network: Network) -> None:
    anonymous = await client.get("/home", follow_redirects=False)
    assert anonymous.status_code in (302, 303) and anonymous.headers["location"].startswith("/login")


# --- shelter staff ----------------------------------------------------------------------------------------------


async def test_shelter_home_puts_open_requests_above_its_own_pools(client: AsyncTestClient, network: Network) -> None:
    request = await case_hold(client, network, beds=2)
    html = await home_of(client, "shelter_a")
    # Its own facility with Arrival / Departure on each pool, and nobody else's facility.
    assert "Maison Alpha" in html and "Bravo House" not in html
    for pool in ("a", "a_family"):
        assert f'id="pool-{network.pools[pool].id}"' in html
        assert f'action="/pools/{network.pools[pool].id}/adjust"' in html
    assert "Arrival" in html and "Departure" in html
    # The open request comes first, with Confirm and Decline sending the person back home.
    assert html.index(f'id="home-hold-{request["id"]}"') < html.index(f'id="pool-{network.pools["a"].id}"')
    assert f'action="/holds/{request["id"]}/confirm"' in html and f'action="/holds/{request["id"]}/decline"' in html
    assert 'name="next" value="/home"' in html
    assert "1 hold request waits for your answer" in html
    assert nav_count(html, "requests") == "1"
    # Live: pool rows and holds over the board socket, named as the home's.
    assert 'ws-connect="/board/ws?views=pools,holds&amp;page=home"' in html
    # The other shelter has nothing waiting.
    other = await home_of(client, "shelter_b")
    assert "Bravo House" in other and "Maison Alpha" not in other and request["id"] not in other
    assert nav_count(other, "requests") == ""


async def test_confirming_from_the_home_comes_back_to_it(client: AsyncTestClient, network: Network) -> None:
    request = await case_hold(client, network)
    await home_of(client, "shelter_a")
    confirmed = await client.post(
        f"/holds/{request['id']}/confirm",
        data={"next": "/home", "_csrf_token": client.cookies.get("csrftoken")},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/home"
    html = (await client.get("/home")).text
    assert f'id="home-hold-{request["id"]}"' not in html and nav_count(html, "requests") == ""


async def test_shelter_home_in_french(client: AsyncTestClient, network: Network) -> None:
    await case_hold(client, network)
    html = await home_of(client, "shelter_a", FR)
    assert '<html lang="fr">' in html
    assert "Vos établissements" in html and "1 demande de retenue attend votre réponse" in html
    assert "Your facilities" not in html


# --- police planners --------------------------------------------------------------------------------------------


async def test_police_home_shows_the_newest_operation_with_its_coverage(
    client: AsyncTestClient, network: Network
) -> None:
    older = await make_operation(client, network, code_name="OLDOWL")
    newest = await make_operation(
        client,
        network,
        code_name="NIGHTJAR",
        needs=[{"profile": "women", "count": 3}, {"profile": "family", "count": 1}],
    )
    placed = await client.post(f"/api/v1/operations/{newest['id']}/allocate", headers=network["police"].headers)
    assert placed.status_code == 201, placed.text
    women = next(h for h in placed.json()["holds"] if h["need_profile"] == "women")
    confirmed = await client.post(f"/api/v1/holds/{women['id']}/confirm", headers=network["shelter_a"].headers)
    assert confirmed.status_code == 200, confirmed.text
    html = await home_of(client, "police")
    assert html.index("NIGHTJAR") < html.index("OLDOWL")  # newest first
    card = html[html.index(f'id="home-operation-{newest["id"]}"') : html.index(f'id="home-operation-{older["id"]}"')]
    # Per needed group: needed, requested (waiting for an answer), confirmed.
    assert re.search(r"Women</th><td>3</td><td>0</td><td>3</td>", card), card
    assert re.search(r"Family room</th><td>1</td><td>1</td><td>0</td>", card), card
    assert "3 of 4 beds confirmed" in card and "missing" not in card
    assert "2 still missing" in html[html.index(f'id="home-operation-{older["id"]}"') :]
    # Then the board of the service's province.
    assert 'href="/?province=QC"' in html
    # Another police service sees none of it; police have no count in the navigation.
    other = await home_of(client, "police_other")
    assert "NIGHTJAR" not in other and "OLDOWL" not in other
    assert "nav-count-" not in other and "ws-connect" not in other


async def test_police_home_in_french(client: AsyncTestClient, network: Network) -> None:
    await make_operation(client, network)
    html = await home_of(client, "police", FR)
    assert "Vos opérations" in html and "Your operations" not in html


# --- fund approvers and case workers ---------------------------------------------------------------------------


async def test_approver_home_counts_the_waiting_requests(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    first = await waiting_request(client, network, fund_id)
    second = await waiting_request(client, network, fund_id)
    html = await home_of(client, "approver")
    assert "2 requests wait" in html
    # The one waiting longest first, each a link to its page; the inbox one tap away.
    assert html.index(f'id="home-waiting-{first["id"]}"') < html.index(f'id="home-waiting-{second["id"]}"')
    assert f'href="/ledger/requests/{first["id"]}"' in html and 'href="/ledger/inbox"' in html
    assert nav_count(html, "approvals") == "2"
    assert 'ws-connect="/board/ws?views=nav&amp;page=home"' in html
    # The same count beside "Approvals" on any page.
    assert nav_count((await client.get("/")).text, "approvals") == "2"
    french = (await client.get("/home", headers=FR)).text
    assert "2 demandes attendent" in french


async def test_case_worker_home_offers_a_new_request_and_lists_cases_and_requests(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    made = await waiting_request(client, network, fund_id)
    html = await home_of(client, "worker")
    assert 'href="/ledger/request"' in html and "New fund request" in html
    assert made["case_code"] in html and f'href="/ledger/requests/{made["id"]}"' in html
    assert "Waiting for approval" in html
    # A case worker who is not an approver has no approvals count.
    assert "nav-count-approvals" not in html
    french = (await client.get("/home", headers=FR)).text
    assert "Nouvelle demande au fonds" in french


async def test_a_person_with_two_roles_sees_the_waiting_work_first(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    await waiting_request(client, network, fund_id, who="worker")
    html = await home_of(client, "dual")  # case worker and fund approver
    assert html.index('id="home-approver"') < html.index('id="home-case-worker"')


# --- auditors, admins, coordinators ----------------------------------------------------------------------------


async def test_auditor_admin_and_coordinator_homes(client: AsyncTestClient, network: Network, fund_id: str) -> None:
    auditor = await home_of(client, "auditor")
    for link in ("/ledger/journal", "/stripe/reconcile", "/ledger/report"):
        assert f'href="{link}"' in auditor
    assert "Emergency Fund" in auditor and "no checkpoint signed yet" in auditor
    assert "Maison Alpha" not in auditor  # no shelter data for those who do not need it
    admin = await home_of(client, "admin")
    assert "Network administration" in admin and 'href="/admin"' in admin
    assert "No role grant is waiting." in admin
    coordinator = await home_of(client, "coordinator")
    assert "Every hold request was answered in time." in coordinator and 'href="/holds/incident"' in coordinator
    french = (await client.get("/home", headers=FR)).text
    assert "Les retenues dans le réseau" in french and "Holds across the network" not in french


# --- the counts' endpoints --------------------------------------------------------------------------------------


async def test_counts_and_parts_are_only_for_those_who_may_see_them(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    await waiting_request(client, network, fund_id)
    await case_hold(client, network)
    await home_of(client, "approver")
    counts = (await client.get("/home/counts", headers={"HX-Request": "true"})).text
    assert 'id="nav-count-approvals"' in counts and 'hx-swap-oob="true"' in counts and ">1<" in counts
    assert "nav-count-requests" not in counts
    assert (await client.get("/home/approvals")).status_code == 200
    assert (await client.get("/home/requests")).status_code == 403
    await home_of(client, "police")
    assert "nav-count" not in (await client.get("/home/counts")).text
    assert (await client.get("/home/approvals")).status_code == 403
    await home_of(client, "shelter_a")
    counts = (await client.get("/home/counts")).text
    assert 'id="nav-count-requests"' in counts and "nav-count-approvals" not in counts
    part = (await client.get("/home/requests")).text
    assert part.startswith('<div id="home-requests"') or 'id="home-requests"' in part


# --- live -------------------------------------------------------------------------------------------------------


async def _recv_containing(ws: Any, needle: str, within_s: float = 3.0) -> str:
    async with asyncio.timeout(within_s):
        while True:
            message = await ws.recv()
            if needle in message:
                return message


async def _nothing_containing(ws: Any, needle: str, within_s: float = 0.5) -> None:
    try:
        async with asyncio.timeout(within_s):
            while True:
                assert needle not in await ws.recv()
    except TimeoutError:
        return


async def test_a_new_request_tells_every_approver_page_to_read_its_count_again(
    live_server: LiveServer, network: Network, fund_id: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_server.url) as approver_http,
        httpx.AsyncClient(base_url=live_server.url) as police_http,
        httpx.AsyncClient(base_url=live_server.url) as worker_http,
    ):
        approver_cookie = await log_in_page(approver_http, "approver")
        police_cookie = await log_in_page(police_http, "police")
        async with (
            # The board page names only pools and holds: the counts reach it all the same.
            page_socket(live_server, approver_cookie, "/board/ws?views=pools,holds") as board_ws,
            page_socket(live_server, approver_cookie, "/board/ws?views=nav&page=home") as home_ws,
            page_socket(live_server, police_cookie, "/board/ws") as police_ws,
            websockets.connect(
                ws_url(live_server, "/api/v1/stream"), additional_headers=network["approver"].headers
            ) as stream,
        ):
            for ws in (board_ws, home_ws, police_ws, stream):
                await until_live(ws)
            code = (await worker_http.post("/api/v1/cases", json={}, headers=network["worker"].headers)).json()
            created = await worker_http.post(
                "/api/v1/disbursements",
                json=disbursement_body(fund_id, code["code"], category="other", amount_cents=30_000),
                headers=network["worker"].headers,
            )
            assert created.status_code == 201, created.text
            # Each page's marker is replaced (static/nav-live.js then reads the counts); the home's names its list.
            on_board = await _recv_containing(board_ws, 'id="nav-stale"')
            assert "data-refresh" not in on_board
            on_home = await _recv_containing(home_ws, 'id="nav-stale"')
            assert 'data-refresh="/home/approvals"' in on_home and 'data-target="#home-approvals"' in on_home
            # The re-read answers the new number.
            counts = await approver_http.get("/home/counts", headers={"HX-Request": "true"})
            assert re.search(r'id="nav-count-approvals"[^>]*>1<', counts.text), counts.text
            # The police never hear of the fund's requests.
            await _nothing_containing(police_ws, "nav-count")
            # The API's stream tells the approver of the request, and nothing about pages' navigation.
            assert '"ledger.disbursement"' in await _recv_containing(stream, created.json()["id"])
            await _nothing_containing(stream, "nav.count")


async def test_a_hold_request_raises_only_its_shelter_staff_count(live_server: LiveServer, network: Network) -> None:
    async with (
        httpx.AsyncClient(base_url=live_server.url) as a_http,
        httpx.AsyncClient(base_url=live_server.url) as b_http,
        httpx.AsyncClient(base_url=live_server.url) as worker_http,
    ):
        a_cookie = await log_in_page(a_http, "shelter_a")
        b_cookie = await log_in_page(b_http, "shelter_b")
        async with (
            page_socket(live_server, a_cookie, "/board/ws?views=pools,holds&page=home") as a_ws,
            page_socket(live_server, b_cookie, "/board/ws?views=pools,holds") as b_ws,
        ):
            await until_live(a_ws)
            await until_live(b_ws)
            code = (await worker_http.post("/api/v1/cases", json={}, headers=network["worker"].headers)).json()["code"]
            placed = await worker_http.post(
                "/api/v1/holds",
                json={"pool_id": network.pools["a"].id, "beds": 1, "case_code": code, "expires_at": later(hours=8)},
                headers=network["worker"].headers,
            )
            assert placed.status_code == 201, placed.text
            message = await _recv_containing(a_ws, 'id="nav-stale"')
            assert 'data-refresh="/home/requests"' in message and 'data-target="#home-requests"' in message
            part = await a_http.get("/home/requests", headers={"HX-Request": "true"})
            assert placed.json()["id"] in part.text
            await _nothing_containing(b_ws, 'id="nav-stale"')
