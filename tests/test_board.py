"""The board page: grouping, filters by htmx with a bookmarkable URL, staff buttons, and what each role sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from beds.audit import AddressRelease
from beds.board import BoardFilter
from beds.errors import Invalid
from beds.models import Facility
from tests.conftest import login_page_session


async def test_board_groups_by_province_and_city_with_counts(client, network) -> None:
    await login_page_session(client, "police")
    page = await client.get("/")
    assert page.status_code == 200
    html = page.text
    assert "Montréal" in html and "Toronto" in html
    # Grouped by province, then city; the viewer's own province (the police service's: Québec) comes first.
    assert html.index("<h2>Quebec") < html.index("<h3>Montréal") < html.index("<h2>Ontario") < html.index("<h3>Toronto")
    assert f'id="pool-{network.pools["a"].id}"' in html
    assert "Maison Alpha" in html and "Bravo House" in html
    assert "Heightened security" in html
    # The police planner has no +1/-1 buttons anywhere.
    assert "/adjust" not in html
    # Confidential data never on the board.
    assert "123 rue Secrète" not in html and "+1-555-000-1111" not in html


async def test_staff_see_buttons_only_on_their_own_pools(client, network) -> None:
    await login_page_session(client, "shelter_a")
    html = (await client.get("/")).text
    assert f"/pools/{network.pools['a'].id}/adjust" in html
    assert f"/pools/{network.pools['b'].id}/adjust" not in html


async def test_htmx_filter_returns_only_the_list_fragment(client, network) -> None:
    await login_page_session(client, "worker")
    full = await client.get("/", params={"province": "ON"})
    assert "<html" in full.text and "Bravo House" in full.text and "Maison Alpha" not in full.text
    partial = await client.get("/", params={"province": "QC", "profile": "women"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.text and "<form" not in partial.text.split("board-list")[0]
    assert "Maison Alpha" in partial.text and "Bravo House" not in partial.text
    by_kind = await client.get("/", params={"kind": "men"}, headers={"HX-Request": "true"})
    assert "Bravo House" in by_kind.text and "Maison Alpha" not in by_kind.text
    criteria = await client.get("/", params={"criteria": "heightened_security"}, headers={"HX-Request": "true"})
    assert "Maison Alpha" in criteria.text and "Bravo House" not in criteria.text
    none = await client.get("/", params={"city": "Nowhere"}, headers={"HX-Request": "true"})
    assert "No facility in 'Nowhere'." in none.text


async def test_only_free_filter(client, network) -> None:
    await client.put(
        f"/api/v1/pools/{network.pools['b'].id}",
        json={"capacity": 8, "occupied": 8, "out_of_service": 0, "version": 1},
        headers=network["shelter_b"].headers,
    )
    await login_page_session(client, "worker")
    html = (await client.get("/", params={"only_free": "true"})).text
    assert "Maison Alpha" in html and "Bravo House" not in html


async def test_filter_form_is_bookmarkable_and_works_without_javascript(client, network) -> None:
    await login_page_session(client, "police")
    html = (await client.get("/", params={"province": "QC"})).text
    assert 'hx-push-url="true"' in html and 'method="get"' in html and 'action="/"' in html
    assert '<option value="QC" selected>' in html
    assert "<noscript>" in html


async def test_staff_plus_one_through_the_page_updates_the_row(client, network) -> None:
    await login_page_session(client, "shelter_a")
    response = await client.post(
        f"/pools/{network.pools['a'].id}/adjust",
        data={"occupied_delta": "1"},
        headers={"x-csrftoken": client.cookies["csrftoken"], "HX-Request": "true"},
    )
    assert response.status_code == 200
    assert f'id="pool-{network.pools["a"].id}"' in response.text
    assert "<strong>5</strong>" in response.text  # 10 - 5 occupied
    full = await client.post(
        f"/pools/{network.pools['a'].id}/adjust",
        data={"occupied_delta": "9"},
        headers={"x-csrftoken": client.cookies["csrftoken"], "HX-Request": "true"},
    )
    # Refused (only 5 free): the row comes back in place with the current counts and why, not an error page.
    assert full.status_code == 200
    assert "No bed is free here any more (5 occupied); nothing was changed." in full.text
    assert "<strong>5</strong>" in full.text


async def test_stale_facilities_are_marked(client, network, sessionmaker) -> None:
    async with sessionmaker() as session:
        await session.execute(
            update(Facility)
            .where(Facility.id == network.facilities["b"].id)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=13))
        )
        await session.commit()
    await login_page_session(client, "police")
    html = (await client.get("/")).text
    bravo = html[html.index("Bravo House") :]
    assert "Stale" in bravo[:800]
    alpha = html[html.index("Maison Alpha") :]
    assert "Stale" not in alpha[:800]
    api = await client.get(f"/api/v1/facilities/{network.facilities['b'].id}", headers=network["police"].headers)
    assert api.json()["stale"] is True


async def test_address_visible_to_own_staff_only_in_html_and_json(client, network, sessionmaker) -> None:
    facility = network.facilities["a"]
    own = await client.get(f"/api/v1/facilities/{facility.id}", headers=network["shelter_a"].headers)
    assert own.json()["address"] == "123 rue Secrète"
    assert own.json()["intake_phone"] == "+1-555-000-1111"
    for who in ("shelter_b", "police", "worker", "approver", "auditor", "coordinator", "admin"):
        other = await client.get(f"/api/v1/facilities/{facility.id}", headers=network[who].headers)
        assert other.status_code == 200
        assert "address" not in other.json() and "intake_phone" not in other.json(), who
        listing = await client.get("/api/v1/facilities", headers=network[who].headers)
        assert "123 rue Secrète" not in listing.text, who
    await login_page_session(client, "police")
    page = await client.get(f"/facilities/{facility.id}")
    assert page.status_code == 200
    assert "123 rue Secrète" not in page.text and "+1-555-000-1111" not in page.text
    async with sessionmaker() as session:
        # Nothing was released to anyone outside the facility; its own staff's reads are recorded too (shelter B's
        # staff listing the facilities read B's address).
        releases = (await session.execute(select(AddressRelease).order_by(AddressRelease.id))).scalars().all()
        assert [(r.facility_id, r.user_id, r.organisation_id, r.grounds) for r in releases] == [
            (facility.id, network["shelter_a"].id, network.orgs["shelter_a"].id, "own_organisation"),
            (network.facilities["b"].id, network["shelter_b"].id, network.orgs["shelter_b"].id, "own_organisation"),
        ]


async def test_facility_api_filters_and_bad_filters(client, network) -> None:
    headers = network["police"].headers
    assert [
        f["name"] for f in (await client.get("/api/v1/facilities", params={"province": "ON"}, headers=headers)).json()
    ] == ["Bravo House"]
    women = (await client.get("/api/v1/facilities", params={"profile": "women"}, headers=headers)).json()
    assert [f["name"] for f in women] == ["Maison Alpha"]
    assert all(p["profile"] in ("women", "any") for p in women[0]["pools"])
    assert (await client.get("/api/v1/facilities", params={"min_free": 10}, headers=headers)).json() == []
    assert (await client.get("/api/v1/facilities", params={"min_free": "x"}, headers=headers)).status_code == 400
    assert (await client.get("/api/v1/facilities", params={"min_free": -1}, headers=headers)).status_code == 422
    assert (await client.get("/api/v1/facilities/nope", headers=headers)).status_code == 404
    unknown_kind = await client.get("/api/v1/facilities", params={"kind": "castle"}, headers=headers)
    assert unknown_kind.status_code == 422 and unknown_kind.json()["error"] == "invalid_filter"


def test_a_board_filter_names_known_kinds_and_criteria_only() -> None:
    for bad in ({"kind": "castle"}, {"criteria": frozenset({"moat"})}, {"min_free": -1}):
        with pytest.raises(Invalid) as refused:
            BoardFilter(**bad)
        assert refused.value.code == "invalid_filter", bad
    assert BoardFilter(kind="men", criteria=frozenset({"accessible"}), min_free=1).as_query() == {
        "kind": "men",
        "criteria": ["accessible"],
        "min_free": "1",
    }


async def test_the_board_page_ignores_a_filter_it_does_not_know(client, network) -> None:
    """An old bookmark may name a kind or criterion that no longer exists: the board shows, without that filter."""
    await login_page_session(client, "police")
    page = await client.get("/", params={"kind": "castle", "criteria": "moat"})
    assert page.status_code == 200
    assert "Maison Alpha" in page.text and "Bravo House" in page.text


async def test_board_fits_a_phone(client, network) -> None:
    await login_page_session(client, "shelter_a")
    html = (await client.get("/")).text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    css = (await client.get("/static/app.css")).text
    assert "@media (max-width: 640px)" in css


async def test_staff_of_a_stale_facility_are_reminded_and_can_confirm(client, network, sessionmaker) -> None:
    async with sessionmaker() as session:
        await session.execute(
            update(Facility)
            .where(Facility.id == network.facilities["a"].id)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=14))
        )
        await session.commit()
    await login_page_session(client, "shelter_a")
    html = (await client.get("/")).text
    assert "Are they still right?" in html
    confirmed = await client.post(
        f"/facilities/{network.facilities['a'].id}/confirm", headers={"x-csrftoken": client.cookies["csrftoken"]}
    )
    assert confirmed.status_code in (200, 303)
    assert "Are they still right?" not in (await client.get("/")).text
    async with sessionmaker() as session:
        facility = await session.get(Facility, network.facilities["a"].id)
    assert datetime.now(UTC) - facility.updated_at < timedelta(minutes=1)
    # Staff of another shelter see no reminder and may not confirm for it.
    await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
    await login_page_session(client, "shelter_b")
    refused = await client.post(
        f"/facilities/{network.facilities['a'].id}/confirm", headers={"x-csrftoken": client.cookies["csrftoken"]}
    )
    assert refused.status_code == 403


async def test_staff_set_counts_and_open_surge_beds_from_the_facility_page(client, network, sessionmaker) -> None:
    from beds.models import BedPool

    pool = network.pools["a"]
    await login_page_session(client, "shelter_a")
    page = await client.get(f"/facilities/{network.facilities['a'].id}")
    assert "123 rue Secrète" in page.text  # its own staff see the address
    assert f'action="/pools/{pool.id}/counts"' in page.text
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    saved = await client.post(
        f"/pools/{pool.id}/counts",
        data={"capacity": "11", "occupied": "5", "out_of_service": "0", "version": "1"},
        headers=csrf,
    )
    assert saved.status_code in (200, 303)
    stale = await client.post(
        f"/pools/{pool.id}/counts",
        data={"capacity": "2", "occupied": "0", "out_of_service": "0", "version": "1"},
        headers=csrf,
    )
    assert stale.status_code == 409
    surge = await client.post(
        f"/pools/{pool.id}/surge", data={"beds": "3", "hours": "12", "reason": "cold"}, headers=csrf
    )
    assert surge.status_code in (200, 303)
    too_long = await client.post(f"/pools/{pool.id}/surge", data={"beds": "3", "hours": "9999"}, headers=csrf)
    assert too_long.status_code == 422
    # The cap is the domain's (beds/pools.py), the same for the API: 14 days, and an end in the future.
    for hours in ("337", "0", "-5", "99999999999999"):
        refused = await client.post(f"/pools/{pool.id}/surge", data={"beds": "3", "hours": hours}, headers=csrf)
        assert refused.status_code == 422, hours
    async with sessionmaker() as session:
        after = await session.get(BedPool, pool.id)
    assert (after.capacity, after.occupied) == (14, 5)
    fortnight = await client.post(f"/pools/{pool.id}/surge", data={"beds": "1", "hours": "336"}, headers=csrf)
    assert fortnight.status_code in (200, 303)
    # Another shelter's staff cannot use these forms on this pool.
    await client.post("/logout", headers=csrf)
    await login_page_session(client, "shelter_b")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    refused = await client.post(f"/pools/{pool.id}/surge", data={"beds": "3", "hours": "12"}, headers=csrf)
    assert refused.status_code == 403


async def test_text_with_a_nul_character_is_bad_input_not_a_crash(client, network) -> None:
    """Found by schemathesis on PostgreSQL, which refuses NUL in text: 400, never a 500."""
    response = await client.get(
        "/api/v1/facilities", params={"city": "Mont\x00réal"}, headers=network["police"].headers
    )
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["error"] == "invalid_text"
    else:
        assert response.json() == []
