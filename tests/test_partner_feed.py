"""The partner feed (issue 14): free beds per city and profile for partner systems, as an account party to nothing
sees them; an ETag and a `since` cursor for cheap polling; never a facility's name or address; and a partner
account reaches nothing else (the access matrix checks every route; here the feed's own rules)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.models import BedPool
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.accounts.service import issue_token
from tests.conftest import PASSWORD, PASSWORD_HASH, Network

FEED = "/api/v1/feed/availability"


async def make_partner(sessionmaker: async_sessionmaker) -> dict[str, str]:
    async with sessionmaker() as session:
        org = Organisation(name="211 Test", kind=OrgKind.COMMUNITY, province="QC")
        session.add(org)
        await session.flush()
        user = User(username="partner_211", password_hash=PASSWORD_HASH, organisation_id=org.id, roles=[Role.PARTNER])
        session.add(user)
        await session.commit()
        return {"Authorization": "Bearer " + await issue_token(session, user)}


async def reported_an_hour_ago(sessionmaker: async_sessionmaker) -> None:
    """The network's pools were reported an hour ago: a quiet network, whose cursor (and ETag) stay put."""
    async with sessionmaker() as session:
        await session.execute(update(BedPool).values(updated_at=utcnow() - timedelta(hours=1)))
        await session.commit()


def by_city(feed: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {f"{c['city']}, {c['province']}": c["free"] for c in feed["cities"]}


async def board_by_city(client: AsyncTestClient, headers: dict[str, str]) -> dict[str, dict[str, int]]:
    free: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for facility in (await client.get("/api/v1/facilities", headers=headers)).json():
        for pool in facility["pools"]:
            free[f"{facility['city']}, {facility['province']}"][pool["profile"]] += pool["free"]
    return {city: dict(profiles) for city, profiles in free.items()}


async def hold_and_keep(client: AsyncTestClient, network: Network) -> None:
    """A police operation holds a bed of shelter A's women's pool; an agreement keeps another for police_other."""
    now = utcnow()
    op = await client.post(
        "/api/v1/operations",
        json={
            "code_name": "FEEDHAWK",
            "province": "QC",
            "needs": [{"profile": "women", "count": 1}],
            "window_start": (now + timedelta(hours=2)).isoformat(),
            "window_end": (now + timedelta(hours=8)).isoformat(),
        },
        headers=network["police"].headers,
    )
    assert op.status_code == 201, op.text
    kept = await client.post(
        "/api/v1/agreements",
        json={"pool_id": network.pools["a"].id, "beds": 1, "partner_org_id": network.orgs["police_other"].id},
        headers=network["shelter_a"].headers,
    )
    assert kept.status_code == 201, kept.text
    hold = await client.post(
        "/api/v1/holds",
        json={
            "pool_id": network.pools["a"].id,
            "beds": 1,
            "operation_id": op.json()["id"],
            "expires_at": (now + timedelta(hours=6)).isoformat(),
        },
        headers=network["police"].headers,
    )
    assert hold.status_code == 201, hold.text


async def test_counts_equal_the_board_of_an_account_party_to_nothing(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    partner = await make_partner(sessionmaker)
    await hold_and_keep(client, network)
    answer = await client.get(FEED, headers=partner)
    assert answer.status_code == 200, answer.text
    feed = answer.json()
    # Women's pool of A: 10 beds, 4 occupied, 1 held for police, 1 kept for police_other: 4 free.
    assert by_city(feed) == {"Montréal, QC": {"family": 3, "women": 4}, "Toronto, ON": {"men": 6}}
    # The same as the board of a case worker, who is party to neither the hold nor the agreement.
    assert by_city(feed) == await board_by_city(client, network["worker_plain"].headers)
    assert [c["total_free"] for c in feed["cities"]] == [6, 7]  # ON before QC
    # Coordinators read the same feed; the police service that holds the bed does not get one.
    coordinator = await client.get(FEED, headers=network["coordinator"].headers)
    assert coordinator.status_code == 200
    assert coordinator.json()["cities"] == feed["cities"]


async def test_an_unchanged_feed_is_304_and_a_changed_pool_makes_it_200(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    partner = await make_partner(sessionmaker)
    await reported_an_hour_ago(sessionmaker)
    first = await client.get(FEED, headers=partner)
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"].startswith("private")
    again = await client.get(FEED, headers={**partner, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert (await client.get(FEED, headers={**partner, "If-None-Match": f'"other", W/{etag}'})).status_code == 304
    arrival = await client.post(
        f"/api/v1/pools/{network.pools['b'].id}/adjust",
        json={"occupied_delta": 1},
        headers=network["shelter_b"].headers,
    )
    assert arrival.status_code == 200
    changed = await client.get(FEED, headers={**partner, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert by_city(changed.json())["Toronto, ON"] == {"men": 5}


async def test_since_gives_only_the_cities_that_changed(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    partner = await make_partner(sessionmaker)
    await reported_an_hour_ago(sessionmaker)
    whole = (await client.get(FEED, headers=partner)).json()
    assert len(whole["cities"]) == 2
    cursor = whole["cursor"]
    nothing = await client.get(FEED, params={"since": cursor}, headers=partner)
    assert nothing.status_code == 200
    assert nothing.json() == {"cursor": cursor, "cities": []}
    arrival = await client.post(
        f"/api/v1/pools/{network.pools['b'].id}/adjust",
        json={"occupied_delta": 1},
        headers=network["shelter_b"].headers,
    )
    assert arrival.status_code == 200
    changed = (await client.get(FEED, params={"since": cursor}, headers=partner)).json()
    assert by_city(changed) == {"Toronto, ON": {"men": 5}}
    assert changed["cursor"] > cursor
    # Polling on with the new cursor: Montréal, unchanged, does not come again (Toronto may, for a few seconds).
    assert "Montréal, QC" not in by_city(
        (await client.get(FEED, params={"since": changed["cursor"]}, headers=partner)).json()
    )


async def test_a_bad_since_is_a_clear_422(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    partner = await make_partner(sessionmaker)
    for since in ("yesterday", "2026-12-01T21:00:00", "12345"):
        answer = await client.get(FEED, params={"since": since}, headers=partner)
        assert answer.status_code == 422, since
        assert answer.json()["error"] == "invalid_since"
        assert "ISO-8601" in answer.json()["detail"]


async def test_the_feed_never_names_a_facility_or_its_address(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    partner = await make_partner(sessionmaker)
    await hold_and_keep(client, network)
    text = (await client.get(FEED, headers=partner)).text
    for facility in network.facilities.values():
        for value in (facility.name, facility.address, facility.intake_phone, facility.area, facility.id):
            assert value not in text
    assert "FEEDHAWK" not in text
    for city in (await client.get(FEED, headers=partner)).json()["cities"]:
        assert set(city) == {"province", "city", "free", "total_free"}


async def test_only_partners_and_coordinators_read_the_feed(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    for who in ("police", "shelter_a", "worker", "approver", "auditor", "admin"):
        assert (await client.get(FEED, headers=network[who].headers)).status_code == 403, who
    assert (await client.get(FEED)).status_code == 401


async def test_a_partner_token_reaches_nothing_else(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    partner = await make_partner(sessionmaker)
    facility, pool = network.facilities["a"].id, network.pools["a"].id
    for method, path in (
        ("GET", "/api/v1/facilities"),
        ("GET", f"/api/v1/facilities/{facility}"),
        ("GET", "/api/v1/operations"),
        ("GET", "/api/v1/placements"),
        ("GET", "/api/v1/push/subscriptions"),
        ("POST", f"/api/v1/pools/{pool}/adjust"),
        ("POST", "/api/v1/holds"),
        ("POST", "/api/v1/cases"),
    ):
        answer = await client.request(method, path, headers=partner, json={})
        assert answer.status_code == 403, (method, path, answer.status_code)
    # What DESIGN.md opens to it besides the feed: the public directory, aggregated availability, its own tokens.
    assert (await client.get("/api/v1/hsds/services", headers=partner)).status_code == 200
    assert (await client.get("/api/v1/availability.have.xml", headers=partner)).status_code == 200
    assert (await client.get("/api/v1/auth/tokens", headers=partner)).status_code == 200
    # Pages: a partner account that logs in with a browser gets no page.
    login = await client.get("/login")
    csrf = login.cookies.get("csrftoken") or client.cookies.get("csrftoken")
    logged_in = await client.post(
        "/login",
        data={"username": "partner_211", "password": PASSWORD, "next": "/"},
        headers={"x-csrftoken": csrf},
        follow_redirects=False,
    )
    assert logged_in.status_code == 303
    for path in ("/", "/home", f"/facilities/{facility}", "/account", "/requests", "/ledger"):
        assert (await client.get(path, follow_redirects=False)).status_code == 403, path
    client.cookies.clear()


def test_the_live_feed_gives_a_changed_city_once_and_ignores_older_versions() -> None:
    from types import SimpleNamespace as Row

    from beds.feed import LiveFeed

    at = utcnow()
    mtl = Row(id="f1", province="QC", city="Montréal")
    mtl_again = Row(id="f2", province="QC", city="montreal")  # the same city, spelled otherwise
    live = LiveFeed(
        [
            (mtl, [Row(id="p1", profile="women", free=3, version=4, updated_at=at)]),
            (mtl_again, [Row(id="p2", profile="women", free=2, version=1, updated_at=at)]),
        ]
    )
    city = live.apply("f2", {"id": "p2", "profile": "women", "free": 1, "version": 2})
    assert city is not None
    assert city.as_json() == {"province": "QC", "city": "Montréal", "free": {"women": 4}, "total_free": 4}
    # The same change again, or one older than what is known, gives nothing.
    assert live.apply("f2", {"id": "p2", "profile": "women", "free": 1, "version": 2}) is None
    assert live.apply("f1", {"id": "p1", "profile": "women", "free": 9, "version": 3}) is None
    assert live.apply("unknown", {"id": "p9", "profile": "men", "free": 1, "version": 1}) is None
    assert not live.knows("unknown")
