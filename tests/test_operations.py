"""Police operations: who sees them, planning across facilities (criteria, security, place), all-or-none."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from beds.holds_models import Hold
from beds.models import BedPool, Facility, FacilityKind, Profile, SecurityLevel
from beds.planner import Candidate, Need, PlanOptions, admits, propose
from tests.conftest import login_page_session


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def op_body(**fields: Any) -> dict:
    return {
        "code_name": "NIGHTJAR",
        "province": "QC",
        "city": "Montréal",
        "window_start": later(hours=1),
        "window_end": later(hours=6),
        "needs": [{"profile": "women", "count": 3}],
        **fields,
    }


async def create(client: Any, network: Any, **fields: Any) -> dict:
    response = await client.post("/api/v1/operations", json=op_body(**fields), headers=network["police"].headers)
    assert response.status_code == 201, response.text
    return response.json()


async def held(sessionmaker: Any) -> int:
    async with sessionmaker() as session:
        return (await session.execute(select(func.sum(BedPool.held)))).scalar_one() or 0


async def test_operation_is_seen_by_its_service_and_coordinators_only(client, network) -> None:
    op = await create(client, network)
    assert op["code_name"] == "NIGHTJAR" and op["needs"] == [{"profile": "women", "count": 3}] and op["holds"] == []
    url = f"/api/v1/operations/{op['id']}"
    for who in ("police", "coordinator"):
        assert (await client.get(url, headers=network[who].headers)).status_code == 200, who
    for who in ("police_other", "shelter_a", "worker", "approver", "auditor", "admin"):
        for method, path in (("get", url), ("post", url + "/plan"), ("post", url + "/allocate")):
            response = await getattr(client, method)(path, headers=network[who].headers)
            assert response.status_code == 404, (who, path, response.text)
    for who in ("shelter_a", "worker", "coordinator"):
        response = await client.post("/api/v1/operations", json=op_body(), headers=network[who].headers)
        assert response.status_code == 403, who


async def test_invalid_operations_are_422(client, network) -> None:
    bad = [
        {"window_end": later(minutes=30), "window_start": later(hours=2)},
        {"window_start": later(hours=-5), "window_end": later(hours=-1)},
        {"needs": []},
        {"needs": [{"profile": "women", "count": 0}]},
        {"needs": [{"profile": "aliens", "count": 1}]},
        {"province": "XX"},
        {"code_name": "  "},
    ]
    for override in bad:
        response = await client.post("/api/v1/operations", json=op_body(**override), headers=network["police"].headers)
        assert response.status_code == 422, (override, response.text)


async def test_plan_places_nothing_and_respects_place_options(client, network, sessionmaker) -> None:
    op = await create(client, network, needs=[{"profile": "women", "count": 3}, {"profile": "men", "count": 2}])
    url = f"/api/v1/operations/{op['id']}/plan"
    local = (await client.post(url, headers=network["police"].headers)).json()
    assert local["covered"] is False
    assert local["missing"] == [{"profile": "men", "count": 2}]
    assert [(p["pool_id"], p["beds"]) for p in local["proposed"]] == [(network.pools["a"].id, 3)]
    wider = (await client.post(url, json={"allow_other_provinces": True}, headers=network["police"].headers)).json()
    assert wider["covered"] is True
    assert {(p["pool_id"], p["beds"]) for p in wider["proposed"]} == {
        (network.pools["a"].id, 3),
        (network.pools["b"].id, 2),
    }
    assert await held(sessionmaker) == 0


async def test_an_operation_typed_without_accents_finds_the_citys_beds(client, network, sessionmaker) -> None:
    for typed in ("Montreal", "MONTRÉAL", " montreal "):
        op = await create(client, network, city=typed)
        plan = (await client.post(f"/api/v1/operations/{op['id']}/plan", headers=network["police"].headers)).json()
        assert plan["covered"] is True, typed
        assert [(p["pool_id"], p["beds"]) for p in plan["proposed"]] == [(network.pools["a"].id, 3)], typed
    # A city with no facility still finds nothing unless other cities are allowed.
    op = await create(client, network, city="Laval")
    plan = (await client.post(f"/api/v1/operations/{op['id']}/plan", headers=network["police"].headers)).json()
    assert plan["covered"] is False and plan["proposed"] == []
    assert await held(sessionmaker) == 0


async def test_allocate_is_all_or_none_and_says_what_is_missing(client, network, sessionmaker) -> None:
    op = await create(client, network, needs=[{"profile": "women", "count": 3}, {"profile": "men", "count": 7}])
    url = f"/api/v1/operations/{op['id']}/allocate"
    refused = await client.post(url, json={"allow_other_provinces": True}, headers=network["police"].headers)
    assert refused.status_code == 409
    assert refused.json()["error"] == "insufficient_capacity"
    assert refused.json()["missing"] == [{"profile": "men", "count": 1}]
    assert await held(sessionmaker) == 0
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Hold))).scalar_one() == 0
    # Beds free up: the same request now places every hold in one go.
    await client.post(
        f"/api/v1/pools/{network.pools['b'].id}/adjust",
        json={"occupied_delta": -1},
        headers=network["shelter_b"].headers,
    )
    placed = await client.post(url, json={"allow_other_provinces": True}, headers=network["police"].headers)
    assert placed.status_code == 201, placed.text
    holds = placed.json()["holds"]
    assert sorted((h["pool_id"], h["beds"]) for h in holds) == sorted(
        [(network.pools["a"].id, 3), (network.pools["b"].id, 7)]
    )
    assert all(h["status"] == "requested" and h["operation_id"] == op["id"] for h in holds)
    assert await held(sessionmaker) == 10
    seen = (await client.get(f"/api/v1/operations/{op['id']}", headers=network["coordinator"].headers)).json()
    assert len(seen["holds"]) == 2
    # Covered needs are not placed twice.
    again = await client.post(url, json={"allow_other_provinces": True}, headers=network["police"].headers)
    assert again.status_code == 201 and again.json()["holds"] == []
    assert await held(sessionmaker) == 10


async def test_shelter_sees_police_hold_without_operation_details(client, network) -> None:
    op = await create(client, network, notes="Raid at the massage parlour on rue X")
    placed = await client.post(f"/api/v1/operations/{op['id']}/allocate", headers=network["police"].headers)
    hold = placed.json()["holds"][0]
    seen = await client.get(f"/api/v1/holds/{hold['id']}", headers=network["shelter_a"].headers)
    text = json.dumps(seen.json())
    assert seen.json()["service_name"] == "police org" and seen.json()["beds"] == 3
    assert seen.json()["window_start"] and seen.json()["window_end"]
    assert "NIGHTJAR" not in text and "massage" not in text
    await login_page_session(client, "shelter_a")
    page = await client.get("/requests")
    assert page.status_code == 200
    assert "police org" in page.text and "NIGHTJAR" not in page.text and "massage" not in page.text
    assert f'id="hold-{hold["id"]}"' in page.text


async def test_operation_pages_for_the_planner(client, network) -> None:
    await login_page_session(client, "police")
    listing = await client.get("/operations")
    assert listing.status_code == 200 and "New operation" in listing.text
    token = client.cookies["csrftoken"]
    created = await client.post(
        "/operations",
        data={
            "code_name": "HERON",
            "province": "QC",
            "city": "Montréal",
            "window_start": (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "window_end": (datetime.now() + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
            "need_women": "2",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page_url = created.headers["location"]
    page = await client.get(page_url)
    assert "HERON" in page.text and "Propose holds" in page.text
    plan = await client.post(
        page_url + "/plan", data={"allow_other_cities": "true"}, headers={"HX-Request": "true", "x-csrftoken": token}
    )
    assert plan.status_code == 200 and "Maison Alpha" in plan.text and "<html" not in plan.text
    allocated = await client.post(page_url + "/allocate", data={"_csrf_token": token}, follow_redirects=False)
    assert allocated.status_code == 303
    page = await client.get(page_url)
    assert "Requested" in page.text and "123 rue Secrète" not in page.text


async def test_shelter_requests_page_confirms_declines_and_claims(client, network) -> None:
    op = await create(client, network, needs=[{"profile": "women", "count": 2}])
    hold = (await client.post(f"/api/v1/operations/{op['id']}/allocate", headers=network["police"].headers)).json()[
        "holds"
    ][0]
    await login_page_session(client, "shelter_a")
    token = client.cookies["csrftoken"]
    refused = await client.post(f"/holds/{hold['id']}/decline", data={"reason": "", "_csrf_token": token})
    assert refused.status_code == 422
    confirmed = await client.post(f"/holds/{hold['id']}/confirm", data={"_csrf_token": token}, follow_redirects=False)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/requests"
    claimed = await client.post(
        f"/holds/{hold['id']}/claim", data={"beds_used": "1", "_csrf_token": token}, follow_redirects=False
    )
    assert claimed.status_code == 303
    page = await client.get("/requests")
    assert "Claimed" in page.text
    agreements = await client.get("/agreements")
    assert agreements.status_code == 200 and "New agreement" in agreements.text


def _facility(**fields: Any) -> Facility:
    base = {
        "organisation_id": "org",
        "name": "F",
        "kind": FacilityKind.VAW_SHELTER,
        "province": "QC",
        "city": "Montréal",
        "genders": "women",
        "age_min": 18,
    }
    return Facility(**{**base, **fields})


def test_admission_criteria() -> None:
    women = BedPool(id="p", facility_id="f", profile=Profile.WOMEN, capacity=5)
    anyp = BedPool(id="q", facility_id="f", profile=Profile.ANY, capacity=5)
    assert admits(_facility(), women, "women")
    assert not admits(_facility(accepts_trafficking=False), women, "women")
    assert not admits(_facility(asylum_seekers_only=True), women, "women")
    assert not admits(_facility(), women, "men")
    assert admits(_facility(genders="women,men"), anyp, "men")
    assert not admits(_facility(genders="women"), anyp, "men")
    assert not admits(_facility(age_min=18), anyp, "youth")
    assert admits(_facility(age_min=16, age_max=18, genders="women,men"), anyp, "youth")
    assert not admits(_facility(age_min=0, age_max=12), anyp, "women")


def test_plan_prefers_security_trafficking_shelters_and_the_same_city() -> None:
    def cand(pid: str, free: int, **fields: Any) -> Candidate:
        return Candidate(
            BedPool(id=pid, facility_id=pid, profile=Profile.WOMEN, capacity=free), _facility(id=pid, **fields)
        )

    candidates = [
        cand("standard", 10),
        cand("high", 2, security_level=SecurityLevel.HIGH),
        cand("trafficking", 2, kind=FacilityKind.TRAFFICKING_SHELTER, security_level=SecurityLevel.HEIGHTENED),
        cand("heightened", 2, security_level=SecurityLevel.HEIGHTENED),
        cand("quebec_city", 10, city="Québec", security_level=SecurityLevel.HIGH),
        cand("toronto", 10, province="ON", city="Toronto", security_level=SecurityLevel.HIGH),
    ]
    plan = propose([Need("women", 7)], candidates, province="QC", city="Montréal", options=PlanOptions())
    assert [(p.pool_id, p.beds) for p in plan.proposals] == [
        ("high", 2),
        ("trafficking", 2),
        ("heightened", 2),
        ("standard", 1),
    ]
    wider = propose(
        [Need("women", 30)], candidates, province="QC", city="Montréal", options=PlanOptions(allow_other_cities=True)
    )
    assert [p.pool_id for p in wider.proposals][-1] == "quebec_city" and wider.missing == [Need("women", 4)]
    everywhere = propose(
        [Need("women", 30)], candidates, province="QC", city="Montréal", options=PlanOptions(allow_other_provinces=True)
    )
    assert everywhere.proposals[-1].pool_id == "toronto" and everywhere.covered
