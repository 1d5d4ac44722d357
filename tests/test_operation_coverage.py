"""Whether an operation is covered: coverage per needed group (API, pages, live), partial allocation within the
hold limits, the operations list's status and coverage, the operation form that keeps what was typed, the
ceiling on an operation's beds, and forms that act once."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import expect
from sqlalchemy import func, select

from beds.coverage import coverage, operation_status
from beds.holds_models import Allocation, Hold, Operation, OperationNeed
from beds.models import BedPool, Facility, FacilityKind, Profile
from beds.planner import Candidate, Need, PlanOptions, propose, trim
from exchange.app import create_app
from tests.conftest import LiveServer, Network, login_page_session
from tests.test_browser import (  # noqa: F401  (fixtures, by import)
    Cast,
    fixture_browser,
    fixture_cast,
)
from tests.test_holds import make_operation
from tests.test_holds_concurrency import check_invariant


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def local_input(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


async def create(client: Any, network: Any, who: str = "police", **fields: Any) -> dict:
    """tests/test_holds.py's operation, needing 3 women's beds unless told otherwise."""
    return await make_operation(client, network, who, **{"needs": [{"profile": "women", "count": 3}], **fields})


def group(op_json: dict, profile: str | None) -> dict:
    return next(g for g in op_json["coverage"]["groups"] if g["profile"] == profile)


def counts(g: dict) -> tuple[int, ...]:
    return (g["needed"], g["requested"], g["confirmed"], g["claimed"], g["declined"], g["missing"])


async def held_beds(sessionmaker: Any) -> int:
    async with sessionmaker() as session:
        return (await session.execute(select(func.sum(BedPool.held)))).scalar_one() or 0


# --- the pure pieces -----------------------------------------------------------------------------------------


def test_coverage_counts_each_group_and_treats_overdue_holds_as_expired() -> None:
    now = datetime.now(UTC)
    needs = [
        OperationNeed(operation_id="o", profile="women", count=5),
        OperationNeed(operation_id="o", profile="men", count=2),
    ]

    def hold(profile: str | None, beds: int, status: str, expires: timedelta = timedelta(hours=2)) -> Hold:
        return Hold(
            pool_id="p",
            facility_id="f",
            facility_org_id="x",
            beds=beds,
            status=status,
            expires_at=now + expires,
            need_profile=profile,
            requested_by="u",
            requested_by_org="x",
            respond_by=now,
            operation_id="o",
        )

    holds = [
        hold("women", 2, "confirmed"),
        hold("women", 1, "requested"),
        hold("women", 1, "requested", timedelta(minutes=-1)),  # overdue: lapsed, not requested
        hold("men", 2, "declined"),
        hold("women", 1, "claimed"),
        hold(None, 3, "requested"),  # placed by hand for the operation, no need named
    ]
    found = coverage(needs, holds, now)
    women, men, other = found.groups
    assert (women.needed, women.requested, women.confirmed, women.claimed, women.expired, women.missing) == (
        5,
        1,
        2,
        1,
        1,
        1,
    )
    assert (men.needed, men.declined, men.missing) == (2, 2, 2)
    assert other.profile is None and other.needed == 0 and other.requested == 3
    assert (found.needed, found.secured, found.missing, found.covered) == (7, 3, 3, False)
    op = Operation(
        organisation_id="x",
        created_by="u",
        code_name="A",
        province="QC",
        window_start=now + timedelta(hours=1),
        window_end=now + timedelta(hours=3),
    )
    assert [operation_status(op, now + timedelta(hours=h)).value for h in (0, 2, 4)] == ["planned", "active", "ended"]


def test_trim_keeps_the_plan_order_and_reports_what_it_cut() -> None:
    facility = Facility(
        id="f",
        organisation_id="o",
        name="F",
        kind=FacilityKind.VAW_SHELTER,
        province="QC",
        city="Montréal",
        genders="women,men",
        age_min=16,
        age_max=24,
    )
    pools = [
        BedPool(id=f"p{i}", facility_id="f", profile=profile, capacity=4)
        for i, profile in enumerate((Profile.WOMEN, Profile.MEN, Profile.ANY))
    ]
    plan = propose(
        [Need("women", 6), Need("men", 3)],
        [Candidate(p, facility) for p in pools],
        province="QC",
        city="Montréal",
        options=PlanOptions(),
    )
    assert sum(p.beds for p in plan.proposals) == 9 and plan.missing == []
    cut = trim(plan, 5)
    assert sum(p.beds for p in cut.proposals) == 5
    assert {m.profile: m.count for m in cut.missing} == {"women": 4}  # men come first in the plan
    # An "any" pool's proposal says whom the facility serves.
    anyp = next(p for p in plan.proposals if p.pool_profile == "any")
    assert (anyp.genders, anyp.age_min, anyp.age_max) == (["women", "men"], 16, 24)


# --- coverage through the API and the page --------------------------------------------------------------------


async def test_coverage_follows_the_holds_through_api_and_page(client, network) -> None:
    op = await create(client, network, needs=[{"profile": "women", "count": 3}, {"profile": "family", "count": 1}])
    url = f"/api/v1/operations/{op['id']}"
    police = network["police"].headers
    seen = (await client.get(url, headers=police)).json()
    assert seen["status"] == "planned"
    assert counts(group(seen, "women")) == (3, 0, 0, 0, 0, 3)
    assert seen["coverage"]["covered"] is False and seen["coverage"]["needed"] == 4

    placed = await client.post(url + "/allocate", headers=police)
    assert placed.status_code == 201, placed.text
    by_profile = {h["need_profile"]: h for h in placed.json()["holds"]}
    seen = (await client.get(url, headers=police)).json()
    assert counts(group(seen, "women")) == (3, 3, 0, 0, 0, 0)
    assert counts(group(seen, "family")) == (1, 1, 0, 0, 0, 0)
    assert seen["coverage"]["covered"] is True

    shelter = network["shelter_a"].headers
    ok = await client.post(f"/api/v1/holds/{by_profile['women']['id']}/confirm", headers=shelter)
    assert ok.status_code == 200, ok.text
    no = await client.post(
        f"/api/v1/holds/{by_profile['family']['id']}/decline", json={"reason": "Room closed"}, headers=shelter
    )
    assert no.status_code == 200, no.text
    seen = (await client.get(url, headers=network["coordinator"].headers)).json()
    assert counts(group(seen, "women")) == (3, 0, 3, 0, 0, 0)
    assert counts(group(seen, "family")) == (1, 0, 0, 0, 1, 1)
    assert (seen["coverage"]["confirmed"], seen["coverage"]["missing"], seen["coverage"]["covered"]) == (3, 1, False)

    claimed = await client.post(
        f"/api/v1/holds/{by_profile['women']['id']}/claim", json={"beds_used": 3}, headers=police
    )
    assert claimed.status_code == 200, claimed.text
    listed = (await client.get("/api/v1/operations", headers=police)).json()
    assert [o["id"] for o in listed] == [op["id"]] and listed[0]["status"] == "planned"
    assert counts(group(listed[0], "women")) == (3, 0, 0, 3, 0, 0)

    # The page says the same, per group, and the list says it at a glance.
    await login_page_session(client, "police")
    page = (await client.get(f"/operations/{op['id']}")).text
    women_row = re.search(r'<tr id="coverage-women".*?</tr>', page, re.S)
    assert women_row is not None
    cells = re.findall(r"<td[^>]*>(\d+)</td>", women_row.group(0))
    assert cells == ["3", "0", "0", "3", "0", "0"]
    family_row = re.search(r'<tr id="coverage-family".*?</tr>', page, re.S)
    assert family_row is not None and re.findall(r"<td[^>]*>(\d+)</td>", family_row.group(0)) == [
        "1",
        "0",
        "0",
        "0",
        "1",
        "1",
    ]
    assert "3 of 4 beds confirmed" in page
    listing = (await client.get("/operations")).text
    assert "3 of 4 beds confirmed" in listing and "1 still missing" in listing and "Planned" in listing
    french = (await client.get(f"/operations/{op['id']}", headers={"Accept-Language": "fr"})).text
    assert "Couverture" in french and "3 lits confirmés sur 4" in french and "Encore à trouver" in french
    french_list = (await client.get("/operations", headers={"Accept-Language": "fr"})).text
    assert "3 lits confirmés sur 4" in french_list and "1 encore à trouver" in french_list and "Prévue" in french_list


async def test_the_plan_says_whom_an_any_pool_serves(client, network, sessionmaker) -> None:
    async with sessionmaker() as session:
        youth = Facility(
            organisation_id=network.orgs["shelter_a"].id,
            name="Jeunesse Delta",
            kind=FacilityKind.YOUTH,
            province="QC",
            city="Montréal",
            genders="women,men,nonbinary",
            age_min=16,
            age_max=21,
        )
        session.add(youth)
        await session.flush()
        session.add(BedPool(facility_id=youth.id, profile=Profile.ANY, capacity=4))
        await session.commit()
    op = await create(client, network, needs=[{"profile": "youth", "count": 2}])
    plan = (await client.post(f"/api/v1/operations/{op['id']}/plan", headers=network["police"].headers)).json()
    proposal = plan["proposed"][0]
    assert (proposal["pool_profile"], proposal["genders"], proposal["age_min"], proposal["age_max"]) == (
        "any",
        ["women", "men", "nonbinary"],
        16,
        21,
    )
    await login_page_session(client, "police")
    token = client.cookies["csrftoken"]
    html = (
        await client.post(
            f"/operations/{op['id']}/plan",
            data={"_csrf_token": token},
            headers={"HX-Request": "true", "x-csrftoken": token},
        )
    ).text
    assert "Jeunesse Delta" in html
    assert "Serves: women, men, non-binary people · aged 16 to 21" in html
    french = (
        await client.post(
            f"/operations/{op['id']}/plan",
            data={"_csrf_token": token},
            headers={"HX-Request": "true", "x-csrftoken": token, "Accept-Language": "fr"},
        )
    ).text
    assert "Accueille : femmes, hommes, personnes non binaires · de 16 à 21 ans" in french


# --- partial allocation ---------------------------------------------------------------------------------------


async def test_partial_allocation_holds_what_exists_and_says_what_is_missing(client, network, sessionmaker) -> None:
    op = await create(client, network, needs=[{"profile": "women", "count": 8}, {"profile": "men", "count": 1}])
    url = f"/api/v1/operations/{op['id']}/allocate"
    police = network["police"].headers
    # All or none stays the default: refused, with what is missing, nothing held.
    refused = await client.post(url, headers=police)
    assert refused.status_code == 409 and refused.json()["error"] == "insufficient_capacity"
    assert refused.json()["missing"] == [{"profile": "men", "count": 1}, {"profile": "women", "count": 2}]
    assert await held_beds(sessionmaker) == 0
    bad = await client.post(url, json={"mode": "some"}, headers=police)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_mode"

    headers = {**police, "Idempotency-Key": "partial-1"}
    placed = await client.post(url, json={"mode": "partial"}, headers=headers)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["mode"] == "partial" and body["hold_limit_reached"] is False
    assert [(h["pool_id"], h["beds"]) for h in body["holds"]] == [(network.pools["a"].id, 6)]
    assert body["missing"] == [{"profile": "men", "count": 1}, {"profile": "women", "count": 2}]
    assert await held_beds(sessionmaker) == 6
    # The same request again acts once and still says what is missing.
    again = await client.post(url, json={"mode": "partial"}, headers=headers)
    assert again.status_code == 201 and [h["id"] for h in again.json()["holds"]] == [body["holds"][0]["id"]]
    assert again.json()["missing"] == body["missing"]
    assert await held_beds(sessionmaker) == 6
    seen = (await client.get(f"/api/v1/operations/{op['id']}", headers=police)).json()
    assert counts(group(seen, "women")) == (8, 6, 0, 0, 0, 2)
    # Keep looking: beds found in another province are placed by a later partial allocation ("partial": true).
    wider = await client.post(url, json={"partial": True, "allow_other_provinces": True}, headers=police)
    assert wider.status_code == 201, wider.text
    assert [(h["pool_id"], h["beds"]) for h in wider.json()["holds"]] == [(network.pools["b"].id, 1)]
    assert wider.json()["missing"] == [{"profile": "women", "count": 2}]
    await check_invariant(sessionmaker)


async def test_partial_allocation_stays_within_the_service_hold_limit(settings, network, sessionmaker) -> None:
    app = create_app(replace(settings, hold_limit_per_organisation=4))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        op = await create(client, network, needs=[{"profile": "women", "count": 5}])
        url = f"/api/v1/operations/{op['id']}/allocate"
        police = network["police"].headers
        # All or none: the plan exists but passes the service's limit.
        refused = await client.post(url, headers=police)
        assert refused.status_code == 409 and refused.json()["error"] == "hold_limit", refused.text
        assert refused.json()["limit"] == "per_organisation"
        assert await held_beds(sessionmaker) == 0
        placed = await client.post(url, json={"mode": "partial"}, headers=police)
        assert placed.status_code == 201, placed.text
        assert sum(h["beds"] for h in placed.json()["holds"]) == 4
        assert placed.json()["missing"] == [{"profile": "women", "count": 1}]
        assert placed.json()["hold_limit_reached"] is True
        # At the limit: a further partial allocation places nothing, and says so.
        more = await client.post(url, json={"mode": "partial"}, headers=police)
        assert more.status_code == 201 and more.json()["holds"] == [] and more.json()["hold_limit_reached"] is True
        assert await held_beds(sessionmaker) == 4


async def test_partial_allocation_from_the_page(client, network, sessionmaker) -> None:
    op = await create(client, network, needs=[{"profile": "women", "count": 8}])
    await login_page_session(client, "police")
    token = client.cookies["csrftoken"]
    preview = (await client.post(f"/operations/{op['id']}/plan", data={"_csrf_token": token})).text
    assert "Place what is available and keep looking" in preview and "Place all these holds" not in preview
    key = re.search(r'name="idempotency_key" value="([^"]+)"', preview.split('class="allocate"')[1]).group(1)
    form = {"_csrf_token": token, "mode": "partial", "idempotency_key": key}
    first = await client.post(f"/operations/{op['id']}/allocate", data=form, follow_redirects=False)
    second = await client.post(f"/operations/{op['id']}/allocate", data=form, follow_redirects=False)
    assert first.status_code == second.status_code == 303, first.text
    assert await held_beds(sessionmaker) == 6  # the double click placed the holds once
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Allocation))).scalar_one() == 1
    page = (await client.get(first.headers["location"])).text
    assert "6 beds placed on hold." in page and "What is still missing is below" in page
    row = re.search(r'<tr id="coverage-women".*?</tr>', page, re.S).group(0)
    assert re.findall(r"<td[^>]*>(\d+)</td>", row) == ["8", "6", "0", "0", "0", "2"]
    # All or none from the page when the plan no longer covers: the page again, with the message and the plan
    # as it is now (one bed freed meanwhile: it offers to place that one and keep looking).
    freed = await client.post(
        f"/api/v1/pools/{network.pools['a'].id}/adjust",
        json={"occupied_delta": -1},
        headers=network["shelter_a"].headers,
    )
    assert freed.status_code == 200, freed.text
    refused = await client.post(f"/operations/{op['id']}/allocate", data={"_csrf_token": token})
    assert refused.status_code == 409 and "<h1>NIGHTJAR" in refused.text
    assert "The network can no longer cover every need." in refused.text
    assert '<button type="submit">Place what is available and keep looking</button>' in refused.text


async def test_partial_allocations_racing_for_the_same_beds_never_overbook(client, network, sessionmaker) -> None:
    """Several police operations in one city ask at once for more than the pool has: each places what is left."""
    ops = [
        await create(client, network, who=who, needs=[{"profile": "women", "count": 4}])
        for who in ("police", "police_other", "police", "police_other")
    ]
    responses = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/operations/{op['id']}/allocate",
                json={"mode": "partial"},
                headers=network["police" if i % 2 == 0 else "police_other"].headers,
            )
            for i, op in enumerate(ops)
        )
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    placed = sum(h["beds"] for r in responses for h in r.json()["holds"])
    missing = sum(m["count"] for r in responses for m in r.json()["missing"])
    assert placed == 6 and missing == 16 - 6  # pool A had 6 free beds
    assert await held_beds(sessionmaker) == 6
    await check_invariant(sessionmaker)


# --- the operation form ---------------------------------------------------------------------------------------


def form(token: str, **fields: str) -> dict[str, str]:
    now = datetime.now()
    return {
        "_csrf_token": token,
        "code_name": "HERON",
        "province": "QC",
        "city": "Montréal",
        "window_start": local_input(now + timedelta(hours=2)),
        "window_end": local_input(now + timedelta(hours=8)),
        "need_women": "2",
        "need_men": "1",
        "notes": "Two vans at the east door",
        "idempotency_key": "form-key-1",
        **fields,
    }


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<small class="field-error" id="{name}-error" role="alert">([^<]*)</small>', html)
    assert found, f"no error beside {name}"
    return found.group(1)


@pytest.mark.parametrize(
    ("lang", "order_text", "ceiling_text"),
    [
        ("en", "The window must end after it starts.", "An operation may ask for at most 200 beds in all."),
        ("fr", "La fenêtre doit finir après son début.", "Une opération peut demander au plus 200 lits en tout."),
    ],
)
async def test_the_form_keeps_what_was_typed_on_errors(
    client, network, sessionmaker, lang, order_text, ceiling_text
) -> None:
    await login_page_session(client, "police")
    token = client.cookies["csrftoken"]
    headers = {"Accept-Language": lang}
    now = datetime.now()
    start, end = local_input(now + timedelta(hours=8)), local_input(now + timedelta(hours=2))
    wrong = await client.post("/operations", data=form(token, window_start=start, window_end=end), headers=headers)
    assert wrong.status_code == 422
    html = wrong.text
    assert field_error(html, "window_end") == order_text
    assert 'value="HERON"' in html and 'value="Montréal"' in html and f'value="{start}"' in html
    assert f'value="{end}"' in html and "Two vans at the east door</textarea>" in html
    assert 'name="need_women" min="0" max="200" value="2"' in html
    assert re.search(r'<option value="QC"[^>]*selected>', html) and 'value="form-key-1"' in html

    too_many = await client.post("/operations", data=form(token, need_women="150", need_men="60"), headers=headers)
    assert too_many.status_code == 422
    assert field_error(too_many.text, "needs") == ceiling_text
    assert 'name="need_women" min="0" max="200" value="150"' in too_many.text
    assert 'name="need_men" min="0" max="200" value="60"' in too_many.text

    garbled = await client.post("/operations", data=form(token, need_youth="lots", code_name=""), headers=headers)
    assert garbled.status_code == 422
    assert field_error(garbled.text, "need_youth") and field_error(garbled.text, "code_name")
    assert 'value="lots"' in garbled.text
    phone = await client.post("/operations", data=form(token, notes="call 514-555-1234"), headers=headers)
    assert phone.status_code == 422 and field_error(phone.text, "notes")
    assert "call 514-555-1234</textarea>" in phone.text and 'value="HERON"' in phone.text
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Operation))).scalar_one() == 0


async def test_the_ceiling_on_an_operation_is_a_clear_422_on_the_api(client, network) -> None:
    body = {"code_name": "GULL", "province": "QC", "window_start": later(hours=1), "window_end": later(hours=3)}
    headers = network["police"].headers
    for needs in (
        [{"profile": "women", "count": 150}, {"profile": "men", "count": 51}],
        [{"profile": "any", "count": 10_000_000}],
    ):
        refused = await client.post("/api/v1/operations", json={**body, "needs": needs}, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "too_many_beds" and refused.json()["max_beds"] == 200
    at_ceiling = await client.post(
        "/api/v1/operations", json={**body, "needs": [{"profile": "women", "count": 200}]}, headers=headers
    )
    assert at_ceiling.status_code == 201, at_ceiling.text


async def test_a_double_submit_of_the_form_records_one_operation(client, network, sessionmaker) -> None:
    await login_page_session(client, "police")
    token = client.cookies["csrftoken"]
    listing = (await client.get("/operations")).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', listing).group(1)
    sent = form(token, idempotency_key=key)
    first, second = await asyncio.gather(
        client.post("/operations", data=sent, follow_redirects=False),
        client.post("/operations", data=sent, follow_redirects=False),
    )
    assert first.status_code == second.status_code == 303, (first.text, second.text)
    assert first.headers["location"] == second.headers["location"]
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Operation))).scalar_one() == 1
    # The same key with other values is not a second operation either: the form says so, keeping the values.
    changed = await client.post("/operations", data={**sent, "code_name": "EGRET"})
    assert changed.status_code == 422 and 'value="EGRET"' in changed.text
    assert "already sent" in changed.text
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Operation))).scalar_one() == 1


# --- live -----------------------------------------------------------------------------------------------------


async def test_coverage_updates_live_when_a_shelter_confirms(
    cast: Cast, live_server: LiveServer, network: Network
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        op = await create(api, network, needs=[{"profile": "women", "count": 2}])
        placed = await api.post(f"/api/v1/operations/{op['id']}/allocate", headers=network["police"].headers)
        assert placed.status_code == 201, placed.text
        hold_id = placed.json()["holds"][0]["id"]
        police = await cast.login("police")
        await police.page.goto(f"{live_server.url}/operations/{op['id']}")
        row = police.page.locator("#coverage-women td")
        await expect(row.nth(1)).to_have_text("2")  # requested
        await expect(row.nth(2)).to_have_text("0")  # confirmed
        await police.live()
        await police.mark()
        confirmed = await api.post(f"/api/v1/holds/{hold_id}/confirm", headers=network["shelter_a"].headers)
        assert confirmed.status_code == 200, confirmed.text
        await expect(row.nth(2)).to_have_text("2")
        await expect(row.nth(1)).to_have_text("0")
        await expect(police.page.locator("#operation-coverage .coverage-glance")).to_contain_text(
            "2 of 2 beds confirmed"
        )
        assert await police.still_marked(), "the operation page reloaded instead of updating live"
        await police.shot("coverage_live_confirmed")
        assert police.oob_misses == [], police.oob_misses
        # On a phone, the coverage and the list fit the screen: no sideways scroll.
        await police.page.set_viewport_size({"width": 390, "height": 844})
        for path in (f"/operations/{op['id']}", "/operations"):
            await police.page.goto(live_server.url + path)
            await expect(police.page.locator("main")).to_contain_text("2 of 2 beds confirmed")
            assert await police.page.evaluate("document.documentElement.scrollWidth") <= 390, path
        await police.shot("coverage_phone_list")
    cast.assert_no_errors()
