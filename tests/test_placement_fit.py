"""Placement fit (issue 13, the bed side): distance, language, at most N per facility, groups kept together,
young adults, Indigenous-led / culturally specific support; on the planner, the board's filters and an
operation through the API and its pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.async_api import expect
from sqlalchemy import select

from beds.fit import profile_fits
from beds.geo import PROVINCE_CENTROIDS, km_between, known_city, point_of
from beds.holds_models import Hold
from beds.models import BedPool, Facility, FacilityKind, Profile, SecurityLevel
from beds.planner import Candidate, Need, PlanOptions, admits, propose, trim
from exchange.demo.network import CITIES
from tests.conftest import LiveServer, Network, login_page_session
from tests.test_board_search import PHONE
from tests.test_browser import (  # noqa: F401 (the fixtures)
    Cast,
    _local_input,
    fixture_browser,
    fixture_cast,
)

# --- the pure planner -------------------------------------------------------------------------------------------


def facility(fid: str, province: str = "QC", city: str = "Montréal", **fields: Any) -> Facility:
    base: dict[str, Any] = {
        "id": fid,
        "organisation_id": "org",
        "name": f"F {fid}",
        "kind": FacilityKind.VAW_SHELTER,
        "province": province,
        "city": city,
        "genders": "women,men",
        "age_min": 18,
        "languages": "en,fr",
    }
    return Facility(**{**base, **fields})


def cand(pid: str, free: int, profile: Profile = Profile.WOMEN, *, fid: str | None = None, **fields: Any) -> Candidate:
    f = facility(fid or pid, **fields)
    return Candidate(BedPool(id=pid, facility_id=f.id, profile=profile, capacity=free), f)


EVERYWHERE = PlanOptions(allow_other_provinces=True)


def test_25_men_in_prince_edward_island_go_to_new_brunswick_before_alberta() -> None:
    candidates = [
        cand("calgary", 30, Profile.MEN, province="AB", city="Calgary"),
        cand("winnipeg", 10, Profile.MEN, province="MB", city="Winnipeg"),
        cand("quebec", 10, Profile.MEN, province="QC", city="Québec"),
        cand("moncton", 22, Profile.MEN, province="NB", city="Moncton"),
    ]
    plan = propose([Need("men", 25)], candidates, province="PE", city="Charlottetown", options=EVERYWHERE)
    assert plan.covered
    assert [(p.pool_id, p.beds) for p in plan.proposals] == [("moncton", 22), ("quebec", 3)]
    moncton, quebec = plan.proposals
    assert 100 < (moncton.distance_km or 0) < 200 < 600 < (quebec.distance_km or 0) < 900
    # Alberta only once everything nearer is used up, and after Manitoba.
    more = propose([Need("men", 60)], candidates, province="PE", city="Charlottetown", options=EVERYWHERE)
    assert [p.pool_id for p in more.proposals] == ["moncton", "quebec", "winnipeg", "calgary"]


def test_the_same_city_then_nearer_cities_then_nearer_provinces() -> None:
    candidates = [
        cand("ottawa", 5, province="ON", city="Ottawa"),  # 170 km from Montréal, but another province
        cand("sherbrooke", 5, city="Sherbrooke"),  # 130 km
        cand("gatineau", 5, city="Gatineau"),  # 165 km
        cand("montreal", 1, security_level=SecurityLevel.STANDARD),
        cand("laval", 5, city="Laval"),  # 15 km
    ]
    plan = propose([Need("women", 20)], candidates, province="QC", city="montreal", options=EVERYWHERE)
    assert [p.pool_id for p in plan.proposals] == ["montreal", "laval", "sherbrooke", "gatineau", "ottawa"]
    assert plan.proposals[0].distance_km == 0
    # A cap on the distance keeps only what is within it, and says what is missing.
    capped = propose(
        [Need("women", 20)],
        candidates,
        province="QC",
        city="Montréal",
        options=PlanOptions(allow_other_provinces=True, max_km=150),
    )
    assert [p.pool_id for p in capped.proposals] == ["montreal", "laval", "sherbrooke"]
    assert capped.missing == [Need("women", 9)]


def test_every_city_of_the_demo_and_the_tests_has_a_point_and_an_unknown_one_falls_back_to_its_province() -> None:
    for province, cities in CITIES.items():
        for city, _areas in cities:
            assert known_city(province, city), (province, city)
    for province, city in (("QC", "montreal"), ("QC", "MONTRÉAL"), ("QC", "Laval"), ("ON", "Toronto")):
        assert known_city(province, city)
    assert point_of("NB", "Nowhereville") == PROVINCE_CENTROIDS["NB"]
    assert point_of("XX", "Montréal") is None and km_between("XX", "", "QC", "Montréal") is None
    assert km_between("QC", "Montréal", "QC", "montreal") == 0
    assert 480 < (km_between("QC", "Montréal", "ON", "Toronto") or 0) < 520
    # A facility in a city the table does not know still ranks: nearer provinces first.
    candidates = [
        cand("yukon", 5, Profile.MEN, province="YT", city="Somewhere"),
        cand("nb", 5, Profile.MEN, province="NB", city="Some village"),
    ]
    plan = propose([Need("men", 10)], candidates, province="NS", city="Halifax", options=EVERYWHERE)
    assert [p.pool_id for p in plan.proposals] == ["nb", "yukon"]


def test_a_group_that_needs_a_language_goes_only_where_it_is_spoken() -> None:
    candidates = [
        cand("english", 10, languages="en"),
        cand("spanish", 2, languages="en,es", city="Laval"),
        cand("spanish2", 5, languages="es,fr", city="Sherbrooke"),
    ]
    options = PlanOptions(allow_other_cities=True)
    plan = propose([Need("women", 4, language="es")], candidates, province="QC", city="Montréal", options=options)
    assert [(p.pool_id, p.beds) for p in plan.proposals] == [("spanish", 2), ("spanish2", 2)]
    assert "es" in plan.proposals[0].languages
    short = propose([Need("women", 9, language="es")], candidates, province="QC", city="Montréal", options=options)
    assert short.missing == [Need("women", 2, language="es")]
    assert not propose([Need("women", 1, language="ti")], candidates, province="QC", city="", options=options).proposals


def test_at_most_n_per_facility_spreads_the_operation() -> None:
    candidates = [
        cand("big", 10, security_level=SecurityLevel.HIGH),
        cand("big_family", 10, Profile.FAMILY, fid="big", security_level=SecurityLevel.HIGH, children_accompanied=True),
        cand("second", 10),
        cand("third", 10, city="Laval"),
    ]
    options = PlanOptions(allow_other_cities=True, max_per_facility=2)
    plan = propose([Need("women", 4), Need("family", 2)], candidates, province="QC", city="Montréal", options=options)
    per_facility: dict[str, int] = {}
    for p in plan.proposals:
        per_facility[p.facility_id] = per_facility.get(p.facility_id, 0) + p.beds
    assert plan.covered and max(per_facility.values()) == 2 and len(per_facility) == 3
    # People the operation already has in a facility count toward its limit.
    again = propose(
        [Need("women", 3)], candidates, province="QC", city="Montréal", options=options, already={"big": 2, "second": 1}
    )
    assert [(p.facility_id, p.beds) for p in again.proposals] == [("second", 1), ("third", 2)]


def test_a_group_kept_together_goes_to_one_facility_or_none() -> None:
    candidates = [
        cand("near", 2, Profile.FAMILY, children_accompanied=True, security_level=SecurityLevel.HIGH),
        cand("far_family", 2, Profile.FAMILY, fid="far", city="Laval", children_accompanied=True),
        cand("far_any", 5, Profile.ANY, fid="far", city="Laval", children_accompanied=True),
    ]
    options = PlanOptions(allow_other_cities=True)
    mother_and_children = Need("family", 3, keep_together=True)
    plan = propose([mother_and_children], candidates, province="QC", city="Montréal", options=options)
    assert {p.facility_id for p in plan.proposals} == {"far"} and sum(p.beds for p in plan.proposals) == 3
    assert all(p.keep_together for p in plan.proposals)
    # Without "keep together" the nearer facility takes what it can.
    split = propose([Need("family", 3)], candidates, province="QC", city="Montréal", options=options)
    assert {p.facility_id for p in split.proposals} == {"near", "far"}
    # No facility with room for the whole group: none of it is placed.
    none = propose([Need("family", 8, keep_together=True)], candidates, province="QC", city="Montréal", options=options)
    assert none.proposals == [] and none.missing == [Need("family", 8, keep_together=True)]
    # A limit per facility below the group's size leaves the group unplaced rather than split.
    capped = PlanOptions(allow_other_cities=True, max_per_facility=2)
    assert not propose([mother_and_children], candidates, province="QC", city="Montréal", options=capped).proposals


def test_a_partial_allocation_keeps_a_group_whole_or_cuts_it_whole() -> None:
    candidates = [
        cand("fam", 5, Profile.FAMILY, children_accompanied=True),
        cand("women", 5),
    ]
    needs = [Need("family", 3, keep_together=True), Need("women", 4)]
    plan = propose(needs, candidates, province="QC", city="Montréal", options=PlanOptions())
    assert plan.covered
    kept = trim(plan, 5)
    assert [(p.need_profile, p.beds) for p in kept.proposals] == [("family", 3), ("women", 2)]
    assert kept.missing == [Need("women", 2)]
    cut = trim(plan, 2)
    assert [(p.need_profile, p.beds) for p in cut.proposals] == [("women", 2)]
    assert sorted((m.profile, m.count, m.keep_together) for m in cut.missing) == [
        ("family", 3, True),
        ("women", 2, False),
    ]


def test_young_adults_and_the_one_eligibility_rule() -> None:
    hotel = facility("hotel", kind=FacilityKind.PARTNER_HOTEL, age_min=18, genders="women,men,nonbinary")
    youth = facility("youth", kind=FacilityKind.YOUTH, age_min=16, age_max=18)
    children = facility("kids", age_min=0, age_max=12, children_accompanied=True)
    over_30 = facility("over30", age_min=30)
    for f, youth_ok, young_adult_ok in (
        (hotel, False, True),
        (youth, True, True),
        (children, False, False),
        (over_30, False, False),
    ):
        assert profile_fits(f, "any", "youth") is youth_ok, f.id
        assert profile_fits(f, "any", "young_adult") is young_adult_ok, f.id
        assert admits(f, BedPool(id="p", facility_id=f.id, profile=Profile.ANY), "youth") is youth_ok
    # A young adults' pool serves young adults only; a women's pool does not take them as young adults.
    assert profile_fits(hotel, "young_adult", "young_adult") and not profile_fits(hotel, "young_adult", "women")
    assert not profile_fits(hotel, "women", "young_adult")
    candidates = [
        cand("ya", 3, Profile.YOUNG_ADULT, age_min=18, age_max=25),
        cand("hotel_any", 5, Profile.ANY, fid="hotel2", kind=FacilityKind.PARTNER_HOTEL),
        cand("youth_only", 5, Profile.ANY, fid="y", age_min=12, age_max=17),
    ]
    plan = propose([Need("young_adult", 5)], candidates, province="QC", city="Montréal", options=PlanOptions())
    assert [(p.pool_id, p.beds) for p in plan.proposals] == [("ya", 3), ("hotel_any", 2)]


def test_a_group_that_prefers_culturally_specific_support_goes_there_first() -> None:
    candidates = [
        cand("secure", 5, security_level=SecurityLevel.HIGH),
        cand("indigenous", 5, indigenous_led=True, cultural_support="Elders, ceremonies"),
        cand("cultural_far", 5, culturally_specific=True, city="Sherbrooke"),
    ]
    options = PlanOptions(allow_other_cities=True)
    plain = propose([Need("women", 2)], candidates, province="QC", city="Montréal", options=options)
    assert [p.pool_id for p in plain.proposals] == ["secure"]
    prefers = Need("women", 7, prefer_culturally_specific=True)
    plan = propose([prefers], candidates, province="QC", city="Montréal", options=options)
    # Within the same reach first (the city), then nearer reach before a preference further away.
    assert [(p.pool_id, p.beds) for p in plan.proposals] == [("indigenous", 5), ("secure", 2)]
    assert plan.proposals[0].indigenous_led and plan.proposals[0].cultural_support == "Elders, ceremonies"


# --- the board ----------------------------------------------------------------------------------------------------


async def add_facility(sessionmaker: Any, network: Network, name: str, pools: dict[Profile, int], **fields: Any) -> str:
    async with sessionmaker() as session:
        f = Facility(
            organisation_id=network.orgs["shelter_a"].id,
            name=name,
            kind=fields.pop("kind", FacilityKind.VAW_SHELTER),
            province=fields.pop("province", "QC"),
            city=fields.pop("city", "Montréal"),
            **fields,
        )
        session.add(f)
        await session.flush()
        session.add_all(BedPool(facility_id=f.id, profile=p, capacity=n) for p, n in pools.items())
        await session.commit()
        return f.id


async def names(client: Any, network: Network, query: str) -> set[str]:
    response = await client.get(f"/api/v1/facilities?{query}", headers=network["worker"].headers)
    assert response.status_code == 200, response.text
    return {f["name"] for f in response.json()}


async def test_the_youth_filter_does_not_count_an_adult_hotels_any_beds(client, network, sessionmaker) -> None:
    await add_facility(
        sessionmaker, network, "Hotel 18+", {Profile.ANY: 6}, kind=FacilityKind.PARTNER_HOTEL, genders="women,men"
    )
    await add_facility(
        sessionmaker, network, "Youth Relay", {Profile.ANY: 4}, kind=FacilityKind.YOUTH, age_min=16, age_max=18
    )
    await add_facility(sessionmaker, network, "Young Adults House", {Profile.YOUNG_ADULT: 5}, age_max=25)
    assert await names(client, network, "province=QC&profile=youth") == {"Youth Relay"}
    assert await names(client, network, "province=QC&profile=young_adult") == {
        "Hotel 18+",
        "Youth Relay",
        "Young Adults House",
    }
    # The board page says the same: its youth count leaves the hotel's beds out.
    await login_page_session(client, "worker")
    page = await client.get("/?province=QC&city=Montréal&profile=youth")
    assert page.status_code == 200 and "Youth Relay" in page.text and "Hotel 18+" not in page.text
    young = await client.get("/?province=QC&city=Montréal&profile=young_adult")
    assert "Young adults 18-25" in young.text and "Young Adults House" in young.text


async def test_the_board_filters_by_language_and_culturally_specific_support(client, network, sessionmaker) -> None:
    await add_facility(sessionmaker, network, "Casa Segura", {Profile.WOMEN: 3}, genders="women", languages="es,fr")
    await add_facility(
        sessionmaker,
        network,
        "Wigwam Lodge",
        {Profile.WOMEN: 3},
        genders="women",
        languages="en,cr",
        indigenous_led=True,
        cultural_support="Elders and ceremonies",
    )
    await add_facility(sessionmaker, network, "Maison Culturelle", {Profile.WOMEN: 2}, culturally_specific=True)
    assert await names(client, network, "language=es") == {"Casa Segura"}
    assert await names(client, network, "language=cr") == {"Wigwam Lodge"}
    assert await names(client, network, "indigenous_led=true") == {"Wigwam Lodge"}
    assert await names(client, network, "culturally_specific=true") == {"Wigwam Lodge", "Maison Culturelle"}
    assert await names(client, network, "culturally_specific=true&language=cr") == {"Wigwam Lodge"}
    listed = await client.get("/api/v1/facilities?indigenous_led=true", headers=network["worker"].headers)
    criteria = listed.json()[0]["criteria"]
    assert criteria["indigenous_led"] is True and criteria["cultural_support"] == "Elders and ceremonies"
    for bad in ("language=Spanish", "language=e"):
        refused = await client.get(f"/api/v1/facilities?{bad}", headers=network["worker"].headers)
        assert refused.status_code == 422, bad
        assert refused.json()["error"] == "invalid_filter"
    assert (
        await client.get("/api/v1/facilities?indigenous_led=maybe", headers=network["worker"].headers)
    ).status_code in (400, 422)
    await login_page_session(client, "worker")
    page = await client.get("/?province=all&language=es")
    assert page.status_code == 200 and "Casa Segura" in page.text and "Wigwam Lodge" not in page.text
    assert 'value="es" selected' in page.text
    cultural = await client.get("/?province=all&criteria=indigenous_led")
    assert "Wigwam Lodge" in cultural.text and "Casa Segura" not in cultural.text
    assert 'title="Elders and ceremonies"' in cultural.text
    # The board page drops a language it cannot read instead of failing.
    assert (await client.get("/?province=all&language=Spanish!")).status_code == 200


async def test_the_facilities_api_sorts_by_distance_from_a_city(client, network, sessionmaker) -> None:
    await add_facility(sessionmaker, network, "Moncton Men", {Profile.MEN: 3}, province="NB", city="Moncton")
    await add_facility(sessionmaker, network, "Calgary Men", {Profile.MEN: 3}, province="AB", city="Calgary")
    headers = network["worker"].headers
    found = (await client.get("/api/v1/facilities?near=charlottetown", headers=headers)).json()
    assert [f["name"] for f in found] == ["Moncton Men", "Maison Alpha", "Bravo House", "Calgary Men"]
    assert [f["distance_km"] for f in found] == sorted(f["distance_km"] for f in found)
    assert 100 < found[0]["distance_km"] < 200 and "address" not in found[0]
    # Without `near`, no distance; a place nobody can locate is a clear 422.
    assert "distance_km" not in (await client.get("/api/v1/facilities", headers=headers)).json()[0]
    unknown = await client.get("/api/v1/facilities?near=Atlantis", headers=headers)
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_city"
    # A small place the table does not know stands for its province when the province is given.
    village = (await client.get("/api/v1/facilities?near=Cap-Pele&province=NB", headers=headers)).json()
    assert [f["name"] for f in village] == ["Moncton Men"] and village[0]["distance_km"] > 0


# --- an operation through the API and its pages -------------------------------------------------------------------


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def op_body(**fields: Any) -> dict:
    return {
        "code_name": "KINGFISHER",
        "province": "PE",
        "city": "Charlottetown",
        "window_start": later(hours=1),
        "window_end": later(hours=6),
        "needs": [{"profile": "men", "count": 4}],
        **fields,
    }


async def test_an_operation_with_fit_options_through_the_api(client, network, sessionmaker) -> None:
    moncton = await add_facility(
        sessionmaker, network, "Moncton Men", {Profile.MEN: 3}, province="NB", city="Moncton", genders="men"
    )
    halifax = await add_facility(
        sessionmaker, network, "Halifax Men", {Profile.MEN: 6}, province="NS", city="Halifax", genders="men"
    )
    calgary = await add_facility(
        sessionmaker, network, "Calgary Men", {Profile.MEN: 20}, province="AB", city="Calgary", genders="men"
    )
    family = await add_facility(
        sessionmaker,
        network,
        "Familles Acadiennes",
        {Profile.FAMILY: 4},
        province="NB",
        city="Moncton",
        genders="women",
        age_min=0,
        children_accompanied=True,
        languages="fr",
    )
    headers = network["police"].headers
    body = op_body(
        max_per_facility=3,
        needs=[
            {"profile": "men", "count": 6},
            {"profile": "family", "count": 3, "language": "fr", "keep_together": True},
        ],
    )
    created = await client.post("/api/v1/operations", json=body, headers=headers)
    assert created.status_code == 201, created.text
    op = created.json()
    assert op["max_per_facility"] == 3
    assert op["needs"] == [
        {"profile": "men", "count": 6},
        {"profile": "family", "count": 3, "language": "fr", "keep_together": True},
    ]
    plan = await client.post(
        f"/api/v1/operations/{op['id']}/plan", json={"allow_other_provinces": True}, headers=headers
    )
    assert plan.status_code == 200, plan.text
    proposed = plan.json()["proposed"]
    placed = [(p["facility_id"], p["need_profile"], p["beds"]) for p in proposed]
    # Men: 3 in Moncton (nearest), then 3 of Halifax's 6 (the limit), never Calgary; the family whole in Moncton.
    assert sorted(placed) == sorted([(moncton, "men", 3), (halifax, "men", 3), (family, "family", 3)])
    assert calgary not in {p["facility_id"] for p in proposed}
    assert all(isinstance(p["distance_km"], int) and 0 < p["distance_km"] < 300 for p in proposed)
    assert [p["distance_km"] for p in proposed] == sorted(p["distance_km"] for p in proposed)  # nearest first
    # A plan request may cap the distance and ask for a stricter limit; a bad one is a 422 that names it.
    url = f"/api/v1/operations/{op['id']}/plan"
    capped = await client.post(
        url, json={"allow_other_provinces": True, "max_distance_km": 150, "max_per_facility": 2}, headers=headers
    )
    assert sorted((p["facility_id"], p["beds"]) for p in capped.json()["proposed"]) == [(moncton, 2)]
    assert {m["profile"]: m["count"] for m in capped.json()["missing"]} == {"men": 4, "family": 3}
    for bad, code in (
        ({"max_distance_km": 0}, "invalid_max_distance"),
        ({"max_per_facility": 0}, "invalid_max_per_facility"),
    ):
        refused = await client.post(url, json=bad, headers=headers)
        assert refused.status_code == 422 and refused.json()["error"] == code, refused.text
    allocated = await client.post(
        f"/api/v1/operations/{op['id']}/allocate", json={"allow_other_provinces": True}, headers=headers
    )
    assert allocated.status_code == 201, allocated.text
    async with sessionmaker() as session:
        holds = (await session.execute(select(Hold).where(Hold.operation_id == op["id"]))).scalars().all()
    per_facility: dict[str, int] = {}
    for hold in holds:
        per_facility[hold.facility_id] = per_facility.get(hold.facility_id, 0) + hold.beds
    assert per_facility == {moncton: 3, halifax: 3, family: 3}


async def test_a_group_that_fits_nowhere_whole_is_all_or_none_and_partial_places_the_rest(
    client, network, sessionmaker
) -> None:
    for city in ("Moncton", "Dieppe"):
        await add_facility(
            sessionmaker,
            network,
            f"Famille {city}",
            {Profile.FAMILY: 2},
            province="NB",
            city=city,
            genders="women",
            age_min=0,
            children_accompanied=True,
        )
    women = await add_facility(
        sessionmaker, network, "Women Moncton", {Profile.WOMEN: 2}, province="NB", city="Moncton"
    )
    headers = network["police"].headers
    body = op_body(
        province="NB",
        city="Moncton",
        needs=[{"profile": "family", "count": 3, "keep_together": True}, {"profile": "women", "count": 1}],
    )
    op = (await client.post("/api/v1/operations", json=body, headers=headers)).json()
    url = f"/api/v1/operations/{op['id']}/allocate"
    options = {"allow_other_cities": True}  # Montréal's family room of 3 is out of reach
    refused = await client.post(url, json=options, headers=headers)
    assert refused.status_code == 409 and refused.json()["missing"] == [{"profile": "family", "count": 3}]
    async with sessionmaker() as session:
        assert (await session.execute(select(Hold))).first() is None
    partial = await client.post(url, json={**options, "mode": "partial"}, headers=headers)
    assert partial.status_code == 201, partial.text
    assert [(h["facility_id"], h["beds"]) for h in partial.json()["holds"]] == [(women, 1)]
    assert partial.json()["missing"] == [{"profile": "family", "count": 3}]


async def test_bad_fit_options_are_a_clear_422_and_change_nothing(client, network) -> None:
    headers = network["police"].headers
    cases = [
        ({"max_per_facility": 0}, "invalid_max_per_facility"),
        ({"max_per_facility": 100000}, "invalid_max_per_facility"),
        ({"needs": [{"profile": "men", "count": 2, "language": "Spanish"}]}, "invalid_language"),
        (
            {"max_per_facility": 2, "needs": [{"profile": "family", "count": 3, "keep_together": True}]},
            "group_over_limit",
        ),
    ]
    for override, code in cases:
        response = await client.post("/api/v1/operations", json=op_body(**override), headers=headers)
        assert response.status_code == 422, (override, response.text)
        assert response.json()["error"] == code, response.text
        assert response.json()["detail"]
    for override in ({"max_per_facility": "three"}, {"needs": [{"profile": "men", "count": 1, "kept": True}]}):
        response = await client.post("/api/v1/operations", json=op_body(**override), headers=headers)
        assert response.status_code in (400, 422), (override, response.text)
    listed = await client.get("/api/v1/operations", headers=headers)
    assert listed.json() == []


async def test_the_operation_pages_ask_for_fit_and_show_distances(client, network, sessionmaker) -> None:
    await add_facility(
        sessionmaker, network, "Lodge Laval", {Profile.YOUNG_ADULT: 4}, city="Laval", age_max=25, languages="fr,es"
    )
    await login_page_session(client, "police")
    listing = await client.get("/operations")
    assert "Young adults 18-25" in listing.text and 'name="need_young_adult_language"' in listing.text
    token = client.cookies["csrftoken"]
    form = {
        "code_name": "PLOVER",
        "province": "QC",
        "city": "Montréal",
        "window_start": (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "window_end": (datetime.now() + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
        "need_young_adult": "2",
        "need_young_adult_language": "es",
        "need_young_adult_together": "true",
        "max_per_facility": "1",
        "_csrf_token": token,
    }
    refused = await client.post("/operations", data=form, follow_redirects=False)
    assert refused.status_code == 422
    assert "A group kept together is larger than this limit" in refused.text
    assert 'value="PLOVER"' in refused.text and '<option value="es" selected>' in refused.text
    created = await client.post("/operations", data={**form, "max_per_facility": "2"}, follow_redirects=False)
    assert created.status_code == 303, created.text
    page_url = created.headers["location"]
    page = await client.get(page_url)
    assert "At most 2 people of this operation in one facility" in page.text and "kept together" in page.text
    plan = await client.post(
        page_url + "/plan", data={"allow_other_cities": "true"}, headers={"HX-Request": "true", "x-csrftoken": token}
    )
    assert plan.status_code == 200 and "Lodge Laval" in plan.text
    assert "Distance" in plan.text and "km" in plan.text and "Spanish" in plan.text
    # Laval is 15 km away: a cap of 50 km keeps it, and the allocate form carries the cap.
    near = await client.post(
        page_url + "/plan",
        data={"allow_other_cities": "true", "max_distance_km": "50"},
        headers={"HX-Request": "true", "x-csrftoken": token},
    )
    assert "Lodge Laval" in near.text and 'name="max_distance_km" value="50"' in near.text
    any_distance = await client.post(
        page_url + "/plan",
        data={"allow_other_cities": "true", "max_distance_km": "10000"},
        headers={"HX-Request": "true", "x-csrftoken": token},
    )
    assert "Lodge Laval" in any_distance.text and 'type="hidden" name="max_distance_km"' not in any_distance.text
    french = await client.post(
        page_url + "/plan",
        data={"allow_other_cities": "true"},
        headers={"HX-Request": "true", "x-csrftoken": token, "Accept-Language": "fr"},
    )
    assert french.status_code == 200


async def test_bad_form_input_keeps_what_was_typed(client, network) -> None:
    await login_page_session(client, "police")
    token = client.cookies["csrftoken"]
    form = {
        "code_name": "TERN",
        "province": "QC",
        "window_start": (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "window_end": (datetime.now() + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
        "need_women": "2",
        "max_per_facility": "two",
        "_csrf_token": token,
    }
    refused = await client.post("/operations", data=form, follow_redirects=False)
    assert refused.status_code == 422
    assert 'value="two"' in refused.text and "max_per_facility-error" in refused.text
    bad_language = await client.post(
        "/operations", data={**form, "max_per_facility": "", "need_women_language": "xx!"}, follow_redirects=False
    )
    assert bad_language.status_code == 422 and "Choose a language from the list." in bad_language.text


async def test_an_admin_marks_a_facility_indigenous_led(client, network, sessionmaker) -> None:
    facility_id = network.facilities["a"].id
    await login_page_session(client, "admin")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    form = await client.get(f"/admin/facilities/{facility_id}")
    assert 'name="indigenous_led"' in form.text and 'name="cultural_support"' in form.text
    fields = {
        "name": "Maison Alpha",
        "kind": "vaw_shelter",
        "province": "QC",
        "city": "Montréal",
        "accepts_trafficking": "true",
        "active": "true",
        "indigenous_led": "true",
        "cultural_support": "Elders on staff, land-based healing",
    }
    saved = await client.post(f"/admin/facilities/{facility_id}", data=fields, headers=csrf, follow_redirects=False)
    assert saved.status_code == 303
    async with sessionmaker() as session:
        facility = await session.get(Facility, facility_id)
        assert facility is not None
        assert facility.indigenous_led and facility.cultural_support == "Elders on staff, land-based healing"
    assert await names(client, network, "indigenous_led=true") == {"Maison Alpha"}
    too_long = await client.post(
        f"/admin/facilities/{facility_id}", data={**fields, "cultural_support": "x" * 201}, headers=csrf
    )
    assert too_long.status_code == 422
    async with sessionmaker() as session:
        facility = await session.get(Facility, facility_id)
        assert facility is not None and facility.cultural_support == "Elders on staff, land-based healing"


async def test_the_demo_has_young_adults_and_indigenous_led_resources(client, network, sessionmaker) -> None:
    from exchange.demo.network import DemoNetwork
    from exchange.demo.placement_fit import FIT_RESOURCES, seed_placement_fit

    net = DemoNetwork()
    async with sessionmaker() as session:
        await seed_placement_fit(session, net)
    assert len(net.facilities) == len(FIT_RESOURCES)
    young = await names(client, network, "profile=young_adult&min_free=1")
    assert {"Passerelle Jeunes Adultes", "Next Step Young Adults", "Wapi Healing Lodge"} <= young
    assert await names(client, network, "indigenous_led=true") == {"Wapi Healing Lodge", "Sky Circle House"}
    assert await names(client, network, "language=cr") == {"Wapi Healing Lodge", "Sky Circle House"}
    for f in net.facilities:
        assert known_city(f.province, f.city), f.city


async def test_the_board_sorts_nearest_first_from_the_viewers_city(client, network, sessionmaker) -> None:
    for name, province, city in (
        ("Gatineau House", "QC", "Gatineau"),
        ("Sherbrooke House", "QC", "Sherbrooke"),
        ("Laval House", "QC", "Laval"),
        ("Moncton House", "NB", "Moncton"),
        ("Second Montréal House", "QC", "Montréal"),  # Montréal the province's biggest city: the viewer's own
    ):
        await add_facility(sessionmaker, network, name, {Profile.WOMEN: 2}, province=province, city=city)
    await login_page_session(client, "worker")  # a Québec organisation without a facility

    def order(text: str, pattern: str) -> list[str]:
        return re.findall(pattern, text)

    by_name = (await client.get("/?province=all")).text
    near = (await client.get("/?province=all&sort=near")).text
    assert order(by_name, r'data-city="([^"]+)"') == [
        "Montréal",
        "Gatineau",
        "Laval",
        "Sherbrooke",
        "Moncton",
        "Toronto",
    ]
    assert order(near, r'data-city="([^"]+)"') == ["Montréal", "Laval", "Sherbrooke", "Gatineau", "Toronto", "Moncton"]
    assert order(near, r'id="province-([A-Z]{2})"') == ["QC", "ON", "NB"]
    assert '<option value="near" selected>' in near


async def test_a_planner_on_a_phone_asks_for_fit_and_sees_distances(
    cast: Cast, live_server: LiveServer, network: Network, sessionmaker: Any
) -> None:
    await add_facility(
        sessionmaker,
        network,
        "Famille Laval",
        {Profile.FAMILY: 4},
        city="Laval",
        genders="women",
        age_min=0,
        children_accompanied=True,
        languages="fr,es",
    )
    police = await cast.login("police", **PHONE)
    page = police.page
    now = datetime.now(UTC)
    await page.goto(live_server.url + "/operations")
    await page.get_by_label("Code name").fill("MERLIN")
    await page.get_by_label("Province").select_option("QC")
    await page.get_by_label("City (optional)").fill("Montréal")
    await page.get_by_label("Window start (Montréal time").fill(_local_input(now + timedelta(hours=1)))
    await page.get_by_label("Window end (Montréal time").fill(_local_input(now + timedelta(hours=6)))
    await page.locator("input[name='need_family']").fill("3")
    family = page.locator(".need-group").filter(has=page.locator("input[name='need_family']"))
    await family.get_by_text("What this group needs").click()
    await family.get_by_label("Language spoken by the staff").select_option("es")
    await family.get_by_label("Keep together: all of this group in one facility, or none").check()
    await page.get_by_label("At most this many people of the operation in one facility (optional)").fill("3")
    await police.shot("placement_fit_1_form_phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.get_by_role("button", name="Record the operation").click()
    await page.wait_for_url(re.compile(r"/operations/[0-9a-f]{32}$"))
    await expect(page.locator("#operation-fit")).to_contain_text("At most 3 people of this operation in one facility")
    await expect(page.locator("#operation-fit")).to_contain_text("speaks Spanish")
    await page.get_by_label("Also other cities of the province").check()
    await page.get_by_role("button", name="Propose holds").click()
    proposal = page.locator("#plan tr.proposal")
    await expect(proposal).to_have_count(1)
    await expect(proposal).to_contain_text("Famille Laval")
    await expect(proposal.locator("td.distance")).to_have_text(re.compile(r"^\d+ km$"))
    await expect(proposal).to_contain_text("the whole group here")
    await police.shot("placement_fit_2_plan_phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    cast.assert_no_errors()


# --- properties over random networks ------------------------------------------------------------------------------

CITY_CHOICES = [("QC", "Montréal"), ("QC", "Laval"), ("QC", "Québec"), ("ON", "Ottawa"), ("NB", "Moncton")]
PROFILE_CHOICES = ["women", "men", "youth", "young_adult", "family", "any"]


@st.composite
def networks(draw: st.DrawFn) -> tuple[list[Candidate], list[Need], PlanOptions, dict[str, int]]:
    candidates = []
    for index in range(draw(st.integers(1, 8))):
        province, city = draw(st.sampled_from(CITY_CHOICES))
        fields = {
            "province": province,
            "city": city,
            "genders": draw(st.sampled_from(["women", "men", "women,men"])),
            "age_min": draw(st.sampled_from([0, 16, 18])),
            "age_max": draw(st.sampled_from([None, 18, 25])),
            "children_accompanied": draw(st.booleans()),
            "languages": draw(st.sampled_from(["en", "fr", "en,es", "fr,es"])),
            "culturally_specific": draw(st.booleans()),
        }
        for pool_index in range(draw(st.integers(1, 3))):
            profile = Profile(draw(st.sampled_from(PROFILE_CHOICES)))
            free = draw(st.integers(0, 6))
            candidates.append(cand(f"p{index}-{pool_index}", free, profile, fid=f"f{index}", **fields))
    needs = [
        Need(
            profile,
            draw(st.integers(1, 6)),
            draw(st.sampled_from(["", "", "es"])),
            draw(st.booleans()),
            draw(st.booleans()),
        )
        for profile in draw(st.lists(st.sampled_from(PROFILE_CHOICES), min_size=1, max_size=4, unique=True))
    ]
    options = PlanOptions(
        allow_other_cities=draw(st.booleans()),
        allow_other_provinces=draw(st.booleans()),
        max_per_facility=draw(st.one_of(st.none(), st.integers(1, 5))),
        max_km=draw(st.one_of(st.none(), st.integers(10, 800))),
    )
    already = {f"f{i}": draw(st.integers(0, 2)) for i in range(draw(st.integers(0, 2)))}
    return candidates, needs, options, already


@settings(max_examples=150, deadline=None)
@given(networks(), st.integers(0, 30))
def test_plans_keep_every_rule_on_random_networks(network: tuple, hold_limit: int) -> None:
    candidates, needs, options, already = network
    plan = propose(needs, candidates, province="QC", city="Montréal", options=options, already=already)
    by_pool = {c.pool.id: c for c in candidates}
    for partial in (plan, trim(plan, hold_limit)):
        # Never more than a pool has free, never a facility that does not fit the group.
        used: dict[str, int] = {}
        for p in partial.proposals:
            used[p.pool_id] = used.get(p.pool_id, 0) + p.beds
            need = next(n for n in needs if n.profile == p.need_profile)
            c = by_pool[p.pool_id]
            assert admits(c.facility, c.pool, need.profile) and (not need.language or need.language in p.languages)
            assert options.max_km is None or (p.distance_km is not None and p.distance_km <= options.max_km)
        assert all(beds <= by_pool[pool_id].pool.free for pool_id, beds in used.items())
        # Never more than N of the operation in one facility, counting those already there.
        if options.max_per_facility is not None:
            per_facility = dict(already)
            for p in partial.proposals:
                per_facility[p.facility_id] = per_facility.get(p.facility_id, 0) + p.beds
            placed_now = {p.facility_id for p in partial.proposals}
            assert all(per_facility[f] <= options.max_per_facility for f in placed_now)
        # A group kept together is in one facility, whole, or not placed at all.
        for need in needs:
            placed = [p for p in partial.proposals if p.need_profile == need.profile]
            missing = sum(m.count for m in partial.missing if m.profile == need.profile)
            assert sum(p.beds for p in placed) + missing == need.count
            if need.keep_together:
                assert not placed or (len({p.facility_id for p in placed}) == 1 and missing == 0)
    # The hold limit cuts, never adds.
    assert sum(p.beds for p in trim(plan, hold_limit).proposals) <= hold_limit
