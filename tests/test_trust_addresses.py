"""Issue 9, points 3, 4, 13 (pool ceiling) and 14 (idempotent pool writes): every read of an address is audited
and shown to the admins and to the shelter; police-held beds show only as "not free" to whoever is not party to the
hold, on the board, in the API and on the live stream; a pool's counts have the forms' ceiling; a shelter's +1/-1
and surge act once per Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets
from sqlalchemy import func, select

from beds.audit import AddressRelease
from beds.models import BedPool, PoolChange, SurgeBeds
from tests.conftest import log_in_page, login_page_session, page_socket, until_live, ws_url


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def releases(sessionmaker: Any) -> list[AddressRelease]:
    async with sessionmaker() as session:
        return list((await session.execute(select(AddressRelease).order_by(AddressRelease.id))).scalars().all())


OPERATION = {
    "code_name": "NIGHTJAR",
    "province": "QC",
    "city": "Montréal",
    "needs": [{"profile": "women", "count": 2}],
}


async def police_hold(client: Any, network: Any, *, beds: int = 2, who: str = "police") -> dict:
    """A police service's operation and a hold of `beds` in shelter A's women's pool, left `requested`."""
    body = {**OPERATION, "window_start": later(hours=1), "window_end": later(hours=6)}
    op = await client.post("/api/v1/operations", json=body, headers=network[who].headers)
    assert op.status_code == 201, op.text
    hold = {
        "pool_id": network.pools["a"].id,
        "beds": beds,
        "operation_id": op.json()["id"],
        "expires_at": later(hours=5),
    }
    created = await client.post("/api/v1/holds", json=hold, headers=network[who].headers)
    assert created.status_code == 201, created.text
    return created.json()


# --- 3. every read of an address is audited, and read back -------------------------------------------------------


async def test_the_facilitys_own_organisation_reading_its_address_is_audited(client, network, sessionmaker) -> None:
    facility = network.facilities["a"]
    seen = await client.get(f"/api/v1/facilities/{facility.id}", headers=network["shelter_a"].headers)
    assert seen.json()["address"] == "123 rue Secrète"
    await login_page_session(client, "shelter_a")
    page = await client.get(f"/facilities/{facility.id}")
    assert "123 rue Secrète" in page.text
    rows = await releases(sessionmaker)
    assert [(r.facility_id, r.user_id, r.organisation_id, r.grounds, r.channel) for r in rows] == [
        (facility.id, network["shelter_a"].id, network.orgs["shelter_a"].id, "own_organisation", "api"),
        (facility.id, network["shelter_a"].id, network.orgs["shelter_a"].id, "own_organisation", "page"),
    ]
    # A list of facilities releases it too, once per facility shown with its address.
    await client.get("/api/v1/facilities", headers=network["shelter_a"].headers)
    assert [(r.facility_id, r.channel) for r in (await releases(sessionmaker))[2:]] == [(facility.id, "api")]


async def _three_reads(client: Any, network: Any) -> dict:
    """Shelter A's staff read A, shelter B's staff read B, the police read A through a confirmed hold."""
    await client.get(f"/api/v1/facilities/{network.facilities['a'].id}", headers=network["shelter_a"].headers)
    await client.get(f"/api/v1/facilities/{network.facilities['b'].id}", headers=network["shelter_b"].headers)
    hold = await police_hold(client, network)
    confirmed = await client.post(f"/api/v1/holds/{hold['id']}/confirm", headers=network["shelter_a"].headers)
    assert confirmed.status_code == 200, confirmed.text
    read = await client.get(f"/api/v1/facilities/{network.facilities['a'].id}", headers=network["police"].headers)
    assert read.json()["address"] == "123 rue Secrète"
    return hold


def release_rows(html: str) -> list[str]:
    return re.findall(r'<tr class="release">(.*?)</tr>', html, re.S)


async def test_admins_see_every_address_read_on_a_filterable_page(client, network, sessionmaker) -> None:
    hold = await _three_reads(client, network)
    await login_page_session(client, "admin")
    everything = await client.get("/admin/address-releases")
    assert everything.status_code == 200
    rows = release_rows(everything.text)
    assert len(rows) == 3
    # Newest first: the police read, with its grounds (the hold), then B's and A's own staff.
    assert "police" in rows[0] and "Maison Alpha" in rows[0] and f"Hold {hold['id'][:8]}" in rows[0]
    assert "shelter_b" in rows[1] and "Bravo House" in rows[1] and "Own organisation" in rows[1]
    assert "shelter_a" in rows[2] and "Maison Alpha" in rows[2]
    # The addresses themselves are not on the page.
    assert "123 rue Secrète" not in everything.text and "77 Hidden Lane" not in everything.text

    async def matching(**query: str) -> list[str]:
        answer = await client.get("/admin/address-releases", params=query)
        assert answer.status_code == 200
        return release_rows(answer.text)

    only_b = await matching(facility_id=network.facilities["b"].id)
    assert len(only_b) == 1 and "shelter_b" in only_b[0]
    only_police = await matching(organisation_id=network.orgs["police"].id)
    assert len(only_police) == 1 and "Maison Alpha" in only_police[0]
    only_a_staff = await matching(user_id=network["shelter_a"].id)
    assert len(only_a_staff) == 1 and "shelter_a" in only_a_staff[0]
    both = await matching(facility_id=network.facilities["a"].id, organisation_id=network.orgs["police"].id)
    assert len(both) == 1
    today = datetime.now(UTC).date()
    assert len(await matching(since=today.isoformat(), until=today.isoformat())) == 3
    assert await matching(since=(today + timedelta(days=1)).isoformat()) == []
    assert await matching(until=(today - timedelta(days=1)).isoformat()) == []
    # A malformed day is no filter, not an error.
    assert len(await matching(since="not-a-day")) == 3
    # Nobody else reads the log (the access matrix covers every role).
    await login_page_session(client, "coordinator")
    assert (await client.get("/admin/address-releases")).status_code == 403


async def test_a_shelter_sees_who_read_its_address_when_and_on_what_grounds(client, network) -> None:
    hold = await _three_reads(client, network)
    await login_page_session(client, "shelter_a")
    page = await client.get(f"/facilities/{network.facilities['a'].id}")
    section = page.text[page.text.index('id="address-readers"') :]
    rows = re.findall(r"<tr><td>(.*?)</tr>", section, re.S)
    # This page view is itself a read, and comes first; then the police, then A's earlier read through the API.
    assert len(rows) == 3
    assert "Shelter A" in rows[0] and "page" in rows[0] and "Own organisation" in rows[0]
    assert "Police" in rows[1] and "police org" in rows[1] and f"Hold {hold['id'][:8]}" in rows[1]
    assert "api" in rows[1]
    assert "Shelter A" in rows[2] and "api" in rows[2]
    # Shelter B's read of its own address is not on A's page; B's page shows only B's reads.
    assert "Shelter B" not in section
    await login_page_session(client, "shelter_b")
    other = await client.get(f"/facilities/{network.facilities['b'].id}")
    other_rows = re.findall(r"<tr><td>(.*?)</tr>", other.text[other.text.index('id="address-readers"') :], re.S)
    assert len(other_rows) == 2 and all("Shelter B" in row for row in other_rows)
    # Whoever does not staff the facility never sees who read its address.
    await login_page_session(client, "police")
    assert 'id="address-readers"' not in (await client.get(f"/facilities/{network.facilities['a'].id}")).text


# --- 4. police-held beds show only as "not free" to whoever is not party to the hold --------------------------


def pool_of(facility: dict, pool_id: str) -> dict:
    return next(p for p in facility["pools"] if p["id"] == pool_id)


async def test_the_api_shows_police_held_beds_as_held_only_to_the_parties(client, network) -> None:
    pool_id, url = network.pools["a"].id, f"/api/v1/facilities/{network.facilities['a'].id}"
    await police_hold(client, network, beds=2)
    # Pool A: capacity 10, occupied 4, 2 held by the police: 4 free for everyone.
    for party in ("police", "shelter_a", "coordinator"):
        pool = pool_of((await client.get(url, headers=network[party].headers)).json(), pool_id)
        assert (pool["held"], pool["out_of_service"], pool["free"]) == (2, 0, 4), party
    for outsider in ("worker", "shelter_b", "police_other", "approver", "auditor", "admin"):
        for answer in (
            (await client.get(url, headers=network[outsider].headers)).json(),
            next(
                f
                for f in (await client.get("/api/v1/facilities", headers=network[outsider].headers)).json()
                if f["id"] == network.facilities["a"].id
            ),
        ):
            pool = pool_of(answer, pool_id)
            # Not free, without saying why: not in `held`, and the counts still add up to capacity.
            assert (pool["held"], pool["out_of_service"], pool["free"]) == (0, 2, 4), outsider
            assert pool["capacity"] == pool["occupied"] + pool["out_of_service"] + pool["held"] + pool["free"]


async def test_a_police_service_sees_its_own_held_beds_but_not_another_services(client, network) -> None:
    pool_id, url = network.pools["a"].id, f"/api/v1/facilities/{network.facilities['a'].id}"
    await police_hold(client, network, beds=2)
    await police_hold(client, network, beds=1, who="police_other")
    seen = {
        who: pool_of((await client.get(url, headers=network[who].headers)).json(), pool_id)
        for who in ("police", "police_other", "worker", "shelter_a")
    }
    assert (seen["police"]["held"], seen["police"]["out_of_service"]) == (2, 1)
    assert (seen["police_other"]["held"], seen["police_other"]["out_of_service"]) == (1, 2)
    assert (seen["worker"]["held"], seen["worker"]["out_of_service"]) == (0, 3)
    assert (seen["shelter_a"]["held"], seen["shelter_a"]["out_of_service"]) == (3, 0)
    assert {pool["free"] for pool in seen.values()} == {3}


def held_on_board(html: str, pool_id: str) -> tuple[int, int]:
    row = re.search(rf'<tr id="pool-{pool_id}".*?</tr>', html, re.S)
    assert row, pool_id
    held = re.search(r'data-label="Held">(\d+)<', row.group(0))
    out = re.search(r'data-label="Out of service">(\d+)<', row.group(0))
    assert held and out
    return int(held.group(1)), int(out.group(1))


async def test_the_board_page_shows_police_held_beds_as_held_only_to_the_parties(client, network) -> None:
    pool_id = network.pools["a"].id
    await police_hold(client, network, beds=2)
    for who, expected in (("worker", (0, 2)), ("shelter_b", (0, 2)), ("police", (2, 0)), ("shelter_a", (2, 0))):
        await login_page_session(client, who)
        assert held_on_board((await client.get("/")).text, pool_id) == expected, who
        assert held_on_board((await client.get(f"/facilities/{network.facilities['a'].id}")).text, pool_id) == expected


async def test_the_network_occupancy_report_shows_held_beds_only_to_coordinators(client, network) -> None:
    await police_hold(client, network, beds=2)
    today = datetime.now(UTC).date().isoformat()

    async def todays_row(who: str) -> list[int]:
        await login_page_session(client, who)
        page = await client.get("/reports/occupancy", params={"days": 1})
        row = re.search(rf"<tr><td>{today}</td>(.*?)</tr>", page.text, re.S)
        assert row, who
        return [int(n) for n in re.findall(r"<td>(\d+)(?: %)?</td>", row.group(1))]

    # capacity, occupied, held, out of service, free, occupancy
    assert (await todays_row("coordinator"))[:5] == [21, 6, 2, 0, 13]
    assert (await todays_row("admin"))[:5] == [21, 6, 0, 2, 13]


async def pool_events(ws: Any, pool_id: str, until_occupied: int, within_s: float = 5.0) -> list[dict]:
    """Every `pool.updated` of the pool this socket receives, up to the one with `until_occupied` beds occupied."""
    seen = []
    async with asyncio.timeout(within_s):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "pool.updated" and message["pool"]["id"] == pool_id:
                seen.append(message["pool"])
                if message["pool"]["occupied"] == until_occupied:
                    return seen


async def test_the_live_stream_tells_police_held_beds_as_held_only_to_the_parties(live_server, network) -> None:
    pool_id = network.pools["a"].id
    who = ("worker", "police", "police_other", "coordinator", "shelter_a", "shelter_b")
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        sockets = [
            await websockets.connect(ws_url(live_server, "/api/v1/stream"), additional_headers=network[w].headers)
            for w in who
        ]
        try:
            for ws in sockets:
                await until_live(ws)
            await police_hold(http, network, beds=2)
            # A change after the hold, to know each socket has had everything the hold sent it.
            adjusted = await http.post(
                f"/api/v1/pools/{pool_id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_a"].headers
            )
            assert adjusted.status_code == 200
            received = {w: await pool_events(ws, pool_id, until_occupied=5) for w, ws in zip(who, sockets, strict=True)}
        finally:
            for ws in sockets:
                await ws.close()
    for w, events in received.items():
        # Exactly one event per change, whatever the audience: the hold's, then the adjustment's.
        assert len(events) == 2, (w, events)
        assert [e["free"] for e in events] == [4, 3], w
    for party in ("police", "coordinator", "shelter_a"):
        assert [(e["held"], e["out_of_service"]) for e in received[party]] == [(2, 0), (2, 0)], party
    for outsider in ("worker", "police_other", "shelter_b"):
        assert [(e["held"], e["out_of_service"]) for e in received[outsider]] == [(0, 2), (0, 2)], outsider


async def test_the_board_socket_renders_police_held_beds_as_not_free_for_outsiders(live_server, network) -> None:
    pool_id = network.pools["a"].id
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        cookie = await log_in_page(http, "worker")
        async with page_socket(live_server, cookie) as ws:
            await until_live(ws)
            await police_hold(http, network, beds=2)
            async with asyncio.timeout(5):
                html = await ws.recv()
                while f'id="pool-{pool_id}"' not in html:
                    html = await ws.recv()
    assert held_on_board(html, pool_id) == (0, 2)


# --- 13. the API has the forms' ceiling on a pool's counts -----------------------------------------------------


async def test_a_pools_counts_have_the_forms_ceiling_in_the_api(client, network, sessionmaker) -> None:
    pool = network.pools["a"]
    headers = network["shelter_a"].headers
    for capacity in (2_147_483_647, 2001):
        body = {"capacity": capacity, "occupied": 4, "out_of_service": 0, "version": 1}
        refused = await client.put(f"/api/v1/pools/{pool.id}", json=body, headers=headers)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_counts", capacity
    for delta in ({"occupied_delta": 2_147_483_647}, {"out_of_service_delta": -2_147_483_647}):
        refused = await client.post(f"/api/v1/pools/{pool.id}/adjust", json=delta, headers=headers)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_counts", delta
    async with sessionmaker() as session:
        assert (await session.get(BedPool, pool.id)).capacity == 10
    body = {"capacity": 2000, "occupied": 4, "out_of_service": 0, "version": 1}
    accepted = await client.put(f"/api/v1/pools/{pool.id}", json=body, headers=headers)
    assert accepted.status_code == 200 and accepted.json()["capacity"] == 2000


# --- 14. a shelter's +1/-1 and surge act once per Idempotency-Key ------------------------------------------------


async def history_count(sessionmaker: Any, pool_id: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(PoolChange).where(PoolChange.pool_id == pool_id))


async def test_an_adjustment_repeated_with_its_key_acts_once_and_answers_the_first_result(
    client, network, sessionmaker
) -> None:
    pool = network.pools["a"]
    url = f"/api/v1/pools/{pool.id}/adjust"
    headers = {**network["shelter_a"].headers, "Idempotency-Key": "arrival-1"}
    first = await client.post(url, json={"occupied_delta": 1}, headers=headers)
    assert first.status_code == 200 and first.json()["occupied"] == 5
    # Another change in between: the replay still answers what the first request did.
    await client.post(url, json={"occupied_delta": 1}, headers=network["shelter_a"].headers)
    again = await client.post(url, json={"occupied_delta": 1}, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    async with sessionmaker() as session:
        assert (await session.get(BedPool, pool.id)).occupied == 6
    assert await history_count(sessionmaker, pool.id) == 2
    other_body = await client.post(url, json={"occupied_delta": -1}, headers=headers)
    assert other_body.status_code == 422 and other_body.json()["error"] == "idempotency_key_reused"
    # The same key on the surge route is another request too.
    surge = {"beds": 2, "expires_at": later(hours=5)}
    reused = await client.post(f"/api/v1/pools/{pool.id}/surge", json=surge, headers=headers)
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    # A key is the caller's: another shelter's staff using the same key acts on its own pool.
    elsewhere = await client.post(
        f"/api/v1/pools/{network.pools['b'].id}/adjust",
        json={"occupied_delta": 1},
        headers={**network["shelter_b"].headers, "Idempotency-Key": "arrival-1"},
    )
    assert elsewhere.status_code == 200 and elsewhere.json()["occupied"] == 3


async def test_a_surge_repeated_with_its_key_opens_beds_once(client, network, sessionmaker) -> None:
    pool = network.pools["a"]
    url = f"/api/v1/pools/{pool.id}/surge"
    headers = {**network["shelter_a"].headers, "Idempotency-Key": "cold-snap"}
    body = {"beds": 3, "expires_at": later(hours=12), "reason": "cold snap"}
    first = await client.post(url, json=body, headers=headers)
    assert first.status_code == 201 and first.json()["capacity"] == 13
    again = await client.post(url, json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    async with sessionmaker() as session:
        assert (await session.get(BedPool, pool.id)).capacity == 13
        assert await session.scalar(select(func.count()).select_from(SurgeBeds)) == 1
    other = await client.post(url, json={**body, "beds": 4}, headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"


async def test_concurrent_duplicates_of_one_key_act_once(client, network, sessionmaker) -> None:
    pool = network.pools["a"]
    adjust_headers = {**network["shelter_a"].headers, "Idempotency-Key": "burst-adjust"}
    surge_headers = {**network["shelter_a"].headers, "Idempotency-Key": "burst-surge"}
    surge = {"beds": 2, "expires_at": later(hours=12)}
    answers = await asyncio.gather(
        *(
            client.post(f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 1}, headers=adjust_headers)
            for _ in range(6)
        ),
        *(client.post(f"/api/v1/pools/{pool.id}/surge", json=surge, headers=surge_headers) for _ in range(6)),
    )
    assert [a.status_code for a in answers] == [200] * 6 + [201] * 6, [a.text for a in answers]
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers[:6]}) == 1
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers[6:]}) == 1
    async with sessionmaker() as session:
        row = await session.get(BedPool, pool.id)
        assert (row.occupied, row.capacity) == (5, 12)
        assert await session.scalar(select(func.count()).select_from(SurgeBeds)) == 1
    assert await history_count(sessionmaker, pool.id) == 2
