"""Finding a bed at national scale (issue 10) and the pool row's Arrival / Departure / Undo (issue 11).

City search ignores accents and case (API, board, planner); the board opens on the viewer's own province and city
as a summary that opens into a city's facilities; answers are compressed on the wire (gzip, brotli) and the demo
network's first board page weighs under 40 KB; a tap on counts someone else changed comes back in the row.
"""

from __future__ import annotations

import gzip
import re
from typing import Any

import brotli
import httpx
import pytest
from playwright.async_api import expect

from beds.models import BedPool, Facility, FacilityKind, Profile
from beds.places import city_key, closest_city
from beds.planner import Candidate, Need, PlanOptions, propose
from exchange.demo.network import DEMO_PASSWORD, seed
from tests.conftest import PASSWORD, LiveServer, Network, log_in_page, login_page_session, page_socket, until_live
from tests.test_browser import (  # noqa: F401 (the fixtures)
    Cast,
    Visitor,
    fixture_browser,
    fixture_cast,
    pool_row,
)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def csrf(client: Any) -> dict[str, str]:
    return {"x-csrftoken": client.cookies["csrftoken"], "HX-Request": "true"}


# City keys and the planner


def test_a_city_key_ignores_accents_case_hyphens_and_spacing() -> None:
    assert city_key("Montréal") == city_key("montreal") == city_key("  MONTRÉAL ") == "montreal"
    assert city_key("Saint-Jean-sur-Richelieu") == city_key("saint jean  sur richelieu")
    assert city_key("St. John's") == city_key("st johns") == city_key("St John\u2019s")
    assert city_key("Québec") != city_key("Montréal")
    assert closest_city("Montrea", ["Québec", "Montréal"]) == "Montréal"
    assert closest_city("quebek", ["Québec", "Montréal"]) == "Québec"
    assert closest_city("Vancouver", ["Québec", "Montréal"]) is None


def test_the_planner_matches_a_city_whatever_its_accents_and_case() -> None:
    def candidate(pool_id: str, city: str, free: int) -> Candidate:
        facility = Facility(
            id=f"f-{pool_id}",
            organisation_id="org",
            name=f"Youth {city}",
            kind=FacilityKind.YOUTH,
            province="QC",
            city=city,
            genders="women,men",
            age_min=16,
            age_max=18,
        )
        return Candidate(BedPool(id=pool_id, facility_id=facility.id, profile=Profile.YOUTH, capacity=free), facility)

    candidates = [candidate("q", "Québec", 5), candidate("m", "Montréal", 3)]
    for typed in ("Montreal", "MONTRÉAL", "montreal"):
        plan = propose([Need("youth", 2)], candidates, province="QC", city=typed, options=PlanOptions())
        assert plan.covered and [p.pool_id for p in plan.proposals] == ["m"], typed
    # Other cities rank after the operation's own even when they have more free beds.
    wide = propose([Need("youth", 4)], candidates, province="QC", city="montreal", options=PlanOptions(True))
    assert [(p.pool_id, p.beds) for p in wide.proposals] == [("m", 3), ("q", 1)]


# The API and the board, on the small test network


async def test_the_facilities_api_finds_a_city_whatever_its_accents_and_case(client: Any, network: Network) -> None:
    headers = network["police"].headers
    for typed in ("Montréal", "Montreal", "montreal", "MONTRÉAL", " montréal "):
        found = await client.get("/api/v1/facilities", params={"city": typed}, headers=headers)
        assert found.status_code == 200, typed
        assert [f["name"] for f in found.json()] == ["Maison Alpha"], typed
    assert (await client.get("/api/v1/facilities", params={"city": "Montrea"}, headers=headers)).json() == []


async def test_the_board_finds_a_city_whatever_its_accents_and_says_when_none_matches(
    client: Any, network: Network
) -> None:
    await login_page_session(client, "police")
    html = (await client.get("/", params={"province": "all", "city": "montreal"})).text
    assert "Maison Alpha" in html and "Bravo House" not in html
    assert f'id="pool-{network.pools["a"].id}"' in html
    # The picker offers the cities that exist.
    assert '<datalist id="city-names"><option value="Montréal"></option><option value="Toronto"></option>' in html
    typo = (await client.get("/", params={"province": "all", "city": "Montrea"}, headers={"HX-Request": "true"})).text
    assert "No facility in &#39;Montrea&#39;." in typo or "No facility in 'Montrea'." in typo
    assert "Did you mean Montréal?" in typo
    assert "Maison Alpha" not in typo


async def test_the_board_names_provinces_in_the_pages_language(client: Any, network: Network) -> None:
    await login_page_session(client, "police")
    english = (await client.get("/", headers={"Accept-Language": "en-CA"})).text
    assert "<h2>Quebec</h2>" in english and '<option value="BC">British Columbia</option>' in english
    french = (await client.get("/", headers={"Accept-Language": "fr-CA"})).text
    assert "<h2>Québec</h2>" in french and '<option value="BC">Colombie-Britannique</option>' in french


# The demo network: a national board


@pytest.fixture(name="demo")
async def fixture_demo(sessionmaker: Any) -> Any:
    async with sessionmaker() as session:
        return await seed(session)


def _opened_cities(html: str) -> list[str]:
    return re.findall(r'<details class="city"[^>]*data-city="([^"]+)" open>', html)


async def test_the_demo_networks_board(client: Any, demo: Any, live_server: LiveServer) -> None:
    """One test for the national network: seeding it takes most of a minute."""
    await opens_on_the_viewers_province_and_city(client, demo)
    await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
    await a_city_of_the_summary_opens_into_its_facilities(client, demo)
    await the_first_page_is_under_40_kb_on_the_wire(live_server)


async def opens_on_the_viewers_province_and_city(client: Any, demo: Any) -> None:
    await login_page_session(client, "police", DEMO_PASSWORD)  # Service de police métropolitain: Québec
    html = (await client.get("/")).text
    provinces = re.findall(r'<details class="province" id="province-(\w\w)"( open)?>', html)
    assert provinces[0] == ("QC", " open")  # Québec first and open
    assert all(not opened for _, opened in provinces[1:])  # the others are one line each
    assert _opened_cities(html) == ["Montréal"]  # Montréal first, with its cards
    montreal = [f for f in demo.facilities if f.city == "Montréal"]
    assert all(f'id="facility-{f.id}"' in html for f in montreal)
    calgary = [f for f in demo.facilities if f.city == "Calgary"]
    assert "Calgary" in html and not any(f'id="facility-{f.id}"' in html for f in calgary)
    # Toronto's planner sees Ontario first, Toronto open.
    await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
    await login_page_session(client, "police2", DEMO_PASSWORD)
    html = (await client.get("/")).text
    assert re.findall(r'<details class="province" id="province-(\w\w)"', html)[0] == "ON"
    assert _opened_cities(html) == ["Toronto"]


async def a_city_of_the_summary_opens_into_its_facilities(client: Any, demo: Any) -> None:
    await login_page_session(client, "police", DEMO_PASSWORD)
    html = (await client.get("/")).text
    link = re.search(r'data-city="Calgary" hx-get="([^"]+)" hx-trigger="toggle once"', html)
    assert link, "Calgary opens by htmx"
    cards = await client.get(link.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert cards.status_code == 200 and "<html" not in cards.text
    calgary = [f for f in demo.facilities if f.city == "Calgary"]
    assert calgary and all(f'id="facility-{f.id}"' in cards.text for f in calgary)
    assert not any(f'id="facility-{f.id}"' in cards.text for f in demo.facilities if f.city != "Calgary")
    # Without JavaScript, the city is a link to the board filtered on it.
    assert 'href="?province=AB&amp;city=Calgary"' in html
    filtered = (await client.get("/", params={"province": "all", "city": "calgary"})).text
    assert _opened_cities(filtered) == ["Calgary"]
    # Every province still works, and the sort by free beds for a profile puts the most free first.
    everything = (await client.get("/", params={"province": "all", "profile": "youth", "sort": "free"})).text
    assert everything.count('<details class="province"') == len({f.province for f in demo.facilities})
    counts = [
        int(n)
        for n in re.findall(r"<strong>(\d+) free beds? for this profile</strong>", everything.split("province-QC")[1])
    ]
    first_other = everything.split('<details class="province"')[2]
    others = [int(n) for n in re.findall(r"<strong>(\d+) free beds? for this profile</strong>", first_other)]
    assert others == sorted(others, reverse=True) and counts


async def the_first_page_is_under_40_kb_on_the_wire(live_server: LiveServer) -> None:
    for who in ("police", "shelter", "coordinator", "approver"):
        async with httpx.AsyncClient(base_url=live_server.url, headers={"Accept-Encoding": "gzip"}) as http:
            await log_in_page(http, who, DEMO_PASSWORD)
            async with http.stream("GET", "/") as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip", who
            assert len(raw) < 40 * 1024, (who, len(raw))
            print(f"board first page for {who}: {len(raw)} bytes gzip")
            html = gzip.decompress(raw).decode()
            assert "Bed board" in html and len(html) > 2 * len(raw), who


# Compression on the wire


async def test_answers_are_compressed_for_clients_that_accept_it_and_sockets_still_work(
    live_server: LiveServer, network: Network
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        cookie = await log_in_page(http, "police")
        for encoding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
            async with http.stream("GET", "/", headers={"Accept-Encoding": encoding}) as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            assert response.headers["content-encoding"] == encoding
            assert "Maison Alpha" in decode(raw).decode()
            async with http.stream(
                "GET", "/api/v1/facilities", headers={**network["police"].headers, "Accept-Encoding": encoding}
            ) as api:
                raw = b"".join([chunk async for chunk in api.aiter_raw()])
            assert api.headers["content-encoding"] == encoding
            assert b"Maison Alpha" in decode(raw)
        plain = await http.get("/", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and "Maison Alpha" in plain.text
        # The board socket is not an HTTP answer: it still opens and carries a pool's change.
        async with page_socket(live_server, cookie) as ws:
            await until_live(ws)
            moved = await http.post(
                f"/api/v1/pools/{network.pools['a'].id}/adjust",
                json={"occupied_delta": 1},
                headers={**network["shelter_a"].headers, "Accept-Encoding": "gzip"},
            )
            assert moved.status_code == 200 and moved.json()["occupied"] == 5
            assert f"pool-{network.pools['a'].id}" in await ws.recv()


async def test_the_journal_csv_download_survives_compression(
    live_server: LiveServer, network: Network, sessionmaker: Any
) -> None:
    from ledger.funds import create_fund

    async with sessionmaker() as session:
        fund = await create_fund(session, name="Wire Fund", currency="CAD")
    async with httpx.AsyncClient(base_url=live_server.url, headers={"Accept-Encoding": "gzip, br"}) as http:
        await log_in_page(http, "auditor")
        csv = await http.get("/ledger/journal.csv", params={"fund": fund.id})
        assert csv.status_code == 200, csv.text
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].count(",") >= 3  # the header row, decoded


# Arrival, Departure, Undo and a stale count, through the pages


async def test_arrival_departure_and_undo_name_what_happens_to_a_person(client: Any, network: Network) -> None:
    pool = network.pools["a"]  # women: capacity 10, occupied 4 → 6 free, version 1
    await login_page_session(client, "shelter_a")
    board = (await client.get("/")).text
    row = re.search(rf'<tr id="pool-{pool.id}".*?</tr>', board, re.S).group(0)
    assert ">Arrival <small>+1 occupied</small></button>" in row
    assert ">Departure <small>\u22121 occupied</small></button>" in row
    assert 'name="version" value="1"' in row and "Undo" not in row

    arrival = await client.post(
        f"/pools/{pool.id}/adjust", data={"occupied_delta": "1", "version": "1"}, headers=csrf(client)
    )
    assert arrival.status_code == 200
    assert "<strong>5</strong>" in arrival.text and "Arrival counted: 5 free." in arrival.text
    undo = re.search(r'<form[^>]*class="undo" data-undo="10">(.*?)</form>', arrival.text, re.S)
    assert undo and ">Undo the arrival</button>" in undo.group(1)
    assert 'name="occupied_delta" value="-1"' in undo.group(1) and 'name="version" value="2"' in undo.group(1)

    undone = await client.post(
        f"/pools/{pool.id}/adjust",
        data={"occupied_delta": "-1", "version": "2", "undo": "true"},
        headers=csrf(client),
    )
    assert "<strong>6</strong>" in undone.text and "Undone: 6 free." in undone.text
    assert "Undo the" not in undone.text  # no undo of an undo

    departure = await client.post(
        f"/pools/{pool.id}/adjust", data={"occupied_delta": "-1", "version": "3"}, headers=csrf(client)
    )
    assert "<strong>7</strong>" in departure.text and "Departure counted: 7 free." in departure.text
    assert ">Undo the departure</button>" in departure.text


async def test_a_tap_on_counts_someone_else_changed_comes_back_in_the_row(
    client: Any, network: Network, sessionmaker: Any
) -> None:
    pool = network.pools["a"]
    await login_page_session(client, "shelter_a")
    # A colleague's Arrival through the API: the page still shows version 1.
    other = await client.post(
        f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_a"].headers
    )
    assert other.json()["version"] == 2
    stale = await client.post(
        f"/pools/{pool.id}/adjust", data={"occupied_delta": "1", "version": "1"}, headers=csrf(client)
    )
    assert stale.status_code == 200 and "<html" not in stale.text
    assert (
        "Someone else changed these counts; they are now 5 occupied. Tap again if your change is still needed."
        in stale.text
    )
    assert 'name="version" value="2"' in stale.text and "<strong>5</strong>" in stale.text
    async with sessionmaker() as session:
        assert (await session.get(BedPool, pool.id)).occupied == 5  # the stale tap changed nothing
    again = await client.post(
        f"/pools/{pool.id}/adjust", data={"occupied_delta": "1", "version": "2"}, headers=csrf(client)
    )
    assert "Arrival counted: 4 free." in again.text
    # Without JavaScript the refusal is the facility page, with the same sentence, not an error page.
    plain = await client.post(
        f"/pools/{pool.id}/adjust",
        data={"occupied_delta": "1", "version": "1", "_csrf_token": client.cookies["csrftoken"]},
    )
    assert plain.status_code == 200 and "Maison Alpha" in plain.text
    assert "Someone else changed these counts; they are now 6 occupied." in plain.text
    # Staff of another shelter still may not tap here.
    await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
    await login_page_session(client, "shelter_b")
    refused = await client.post(
        f"/pools/{pool.id}/adjust", data={"occupied_delta": "1", "version": "3"}, headers=csrf(client)
    )
    assert refused.status_code == 403


async def on_the_board(cast: Cast, username: str, password: str = PASSWORD, **context_options: Any) -> Visitor:
    """Log in (the login lands on a role's home page), then open the board."""
    visitor = await cast.login(username, password, **context_options)
    await visitor.page.goto(cast.server.url + "/")
    return visitor


async def test_an_arrival_on_a_phone_can_be_undone(
    cast: Cast, live_server: LiveServer, network: Network, sessionmaker: Any
) -> None:
    shelter = await on_the_board(cast, "shelter_a", **PHONE)
    await shelter.live()
    row = pool_row(shelter.page, network.pools["a"].id)
    arrival = row.get_by_role("button", name="Arrival")
    await expect(arrival).to_be_visible()
    await expect(row.locator("td.free")).to_have_text("6")
    await arrival.click()
    await expect(row.locator("td.free")).to_have_text("5")
    await expect(row.get_by_role("status")).to_have_text("Arrival counted: 5 free.")
    await row.get_by_role("button", name="Undo the arrival").click()
    await expect(row.locator("td.free")).to_have_text("6")
    await expect(row.get_by_role("status")).to_have_text("Undone: 6 free.")
    await expect(row.get_by_role("button", name="Undo the arrival")).to_have_count(0)
    await shelter.shot("board_arrival_undo_phone")
    width = await shelter.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    # Undo goes by itself after ten seconds.
    await arrival.click()
    await expect(row.get_by_role("button", name="Undo the arrival")).to_be_visible()
    await expect(row.get_by_role("button", name="Undo the arrival")).to_have_count(0, timeout=14_000)
    async with sessionmaker() as session:
        assert (await session.get(BedPool, network.pools["a"].id)).occupied == 5
    cast.assert_no_errors()
