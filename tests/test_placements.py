"""Placements (issue 12): a claim opens one stay per bed, a Departure ends the one chosen (or none), the case's
worker gets follow-up dates, each side sees only its own, reports count stays, and the retention step removes
case links once however many processes run it."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from beds.holds_models import Hold
from beds.models import BedPool, PoolChange
from beds.placements import REASON_ENDED, follow_up_dates
from beds.placements_models import FollowUp, Placement
from beds.reports import stay_figures
from exchange.app import create_app
from exchange.placements.sweep import AUDIT_ACTION, sweep_personal_links
from ledger.anchor_models import NetworkEvent
from tests.conftest import login_page_session


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def csrf(client: Any) -> dict[str, str]:
    return {"x-csrftoken": client.cookies["csrftoken"], "HX-Request": "true"}


async def case_hold(client: Any, network: Any, beds: int = 2, who: str = "worker") -> tuple[str, dict]:
    case = await client.post("/api/v1/cases", json={}, headers=network[who].headers)
    assert case.status_code == 201, case.text
    code = case.json()["code"]
    body = {"pool_id": network.pools["a"].id, "beds": beds, "case_code": code, "expires_at": later(hours=4)}
    created = await client.post("/api/v1/holds", json=body, headers=network[who].headers)
    assert created.status_code == 201, created.text
    return code, created.json()


async def claimed(client: Any, network: Any, beds: int = 2, used: int | None = None) -> tuple[str, list[dict]]:
    """A case worker's hold at shelter A, claimed by the shelter's staff (the people arrived); its placements."""
    code, hold = await case_hold(client, network, beds)
    claim = await client.post(
        f"/api/v1/holds/{hold['id']}/claim", json={"beds_used": used or beds}, headers=network["shelter_a"].headers
    )
    assert claim.status_code == 200, claim.text
    listed = await client.get(f"/api/v1/placements?case_code={code}", headers=network["worker"].headers)
    assert listed.status_code == 200, listed.text
    return code, listed.json()


async def pool_of(sessionmaker: Any, pool_id: str) -> BedPool:
    async with sessionmaker() as session:
        pool = await session.get(BedPool, pool_id)
        assert pool is not None
        return pool


async def test_a_claim_opens_one_placement_per_bed_used_with_the_count(client, network, sessionmaker) -> None:
    code, placements = await claimed(client, network, beds=3, used=2)
    assert len(placements) == 2
    for p in placements:
        assert p["case_code"] == code and p["pool_id"] == network.pools["a"].id
        assert p["facility_id"] == network.facilities["a"].id
        assert p["start"] and p["end"] is None and p["expected_end"] is None and p["follow_ups"] == []
    pool = await pool_of(sessionmaker, network.pools["a"].id)
    assert (pool.occupied, pool.held) == (4 + 2, 0)  # two arrived, the third bed went back to free

    # An operation's claim opens stays too, with no case code (police never see case codes).
    op = await client.post(
        "/api/v1/operations",
        json={
            "code_name": "HERON",
            "province": "QC",
            "window_start": later(hours=1),
            "window_end": later(hours=5),
            "needs": [{"profile": "women", "count": 1}],
        },
        headers=network["police"].headers,
    )
    body = {"pool_id": network.pools["a"].id, "beds": 1, "operation_id": op.json()["id"], "expires_at": later(hours=4)}
    police_hold = (await client.post("/api/v1/holds", json=body, headers=network["police"].headers)).json()
    await client.post(
        f"/api/v1/holds/{police_hold['id']}/claim", json={"beds_used": 1}, headers=network["shelter_a"].headers
    )
    staff_view = (await client.get("/api/v1/placements?open=true", headers=network["shelter_a"].headers)).json()
    assert sorted(str(p["case_code"]) for p in staff_view) == sorted([code, code, "None"])


async def test_departure_ends_the_chosen_placement_and_moves_one_bed(client, network, sessionmaker) -> None:
    _code, placements = await claimed(client, network, beds=2)
    chosen, other = placements
    ended = await client.post(f"/api/v1/placements/{chosen['id']}/end", headers=network["shelter_a"].headers)
    assert ended.status_code == 200, ended.text
    answer = ended.json()
    assert answer["end"] is not None and answer["pool"]["occupied"] == 4 + 2 - 1
    # The follow-up dates: 7 and 30 days after the end (the settings' default).
    end = datetime.fromisoformat(answer["end"])
    assert [(f["days_after"], datetime.fromisoformat(f["due_at"])) for f in answer["follow_ups"]] == [
        (7, end + timedelta(days=7)),
        (30, end + timedelta(days=30)),
    ]
    still_open = (await client.get("/api/v1/placements?open=true", headers=network["shelter_a"].headers)).json()
    assert [p["id"] for p in still_open] == [other["id"]]

    # The same stay cannot end twice, nor free a second bed.
    again = await client.post(f"/api/v1/placements/{chosen['id']}/end", headers=network["shelter_a"].headers)
    assert again.status_code == 409 and again.json()["error"] == "placement_ended"
    pool = await pool_of(sessionmaker, network.pools["a"].id)
    assert pool.occupied == 5
    async with sessionmaker() as session:
        reasons = (await session.execute(select(PoolChange.reason).where(PoolChange.pool_id == pool.id))).scalars()
        assert list(reasons).count(REASON_ENDED) == 1


async def test_two_taps_ending_one_stay_at_once_end_it_once(client, network, sessionmaker) -> None:
    _code, placements = await claimed(client, network, beds=1)
    url = f"/api/v1/placements/{placements[0]['id']}/end"
    first, second = await asyncio.gather(
        client.post(url, headers=network["shelter_a"].headers), client.post(url, headers=network["shelter_a"].headers)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert (await pool_of(sessionmaker, network.pools["a"].id)).occupied == 4


async def test_an_idempotency_key_ends_once_and_answers_the_same(client, network, sessionmaker) -> None:
    _code, placements = await claimed(client, network, beds=2)
    headers = {**network["shelter_a"].headers, "Idempotency-Key": "end-once-1"}
    url = f"/api/v1/placements/{placements[0]['id']}/end"
    # Two copies of one request at once, then a retry: one departure, three equal answers.
    first, duplicate = await asyncio.gather(client.post(url, headers=headers), client.post(url, headers=headers))
    replay = await client.post(url, headers=headers)
    assert first.status_code == duplicate.status_code == replay.status_code == 200, (first.text, duplicate.text)
    assert {r.json()["pool"]["occupied"] for r in (first, duplicate, replay)} == {5}
    assert (await pool_of(sessionmaker, network.pools["a"].id)).occupied == 5
    # The same key for another stay is refused and ends nothing.
    reused = await client.post(f"/api/v1/placements/{placements[1]['id']}/end", headers=headers)
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    assert (await pool_of(sessionmaker, network.pools["a"].id)).occupied == 5


async def test_the_page_departure_asks_which_stay_ends_or_none(client, network, sessionmaker) -> None:
    code, placements = await claimed(client, network, beds=2)
    pool_id = network.pools["a"].id
    await login_page_session(client, "shelter_a")
    board = (await client.get("/")).text
    row = re.search(rf'<tr id="pool-{pool_id}".*?</tr>', board, re.S).group(0)
    assert f'hx-get="/placements/departure/{pool_id}"' in row
    assert ">Departure <small>\u22121 occupied</small></button>" in row

    ask = await client.get(f"/placements/departure/{pool_id}", headers=csrf(client))
    assert ask.status_code == 200 and "Who is leaving?" in ask.text
    assert ask.text.count(f"<code>{code}</code>") == 2 and "Someone else (no stay recorded)" in ask.text
    # Without JavaScript the same question is a page; Cancel folds it away in the row.
    page = await client.get(f"/placements/departure/{pool_id}")
    assert page.status_code == 200 and "<h1>Departure</h1>" in page.text and "Who is leaving?" in page.text
    folded = await client.get(f"/placements/departure/{pool_id}?cancel=true", headers=csrf(client))
    assert folded.text == f'<div id="departure-{pool_id}" class="departure-choice" hidden></div>'

    # "None": a walk-in left; the stays stay open.
    none = await client.post(
        f"/pools/{pool_id}/adjust",
        data={"occupied_delta": "-1", "version": str((await pool_of(sessionmaker, pool_id)).version)},
        headers=csrf(client),
    )
    assert none.status_code == 200 and "Departure counted" in none.text
    assert len((await client.get("/api/v1/placements?open=true", headers=network["shelter_a"].headers)).json()) == 2

    # One chosen stay: the row comes back with the new counts.
    ended = await client.post(f"/placements/{placements[0]['id']}/end", data={}, headers=csrf(client))
    assert ended.status_code == 200 and f'<tr id="pool-{pool_id}"' in ended.text
    assert "Stay ended: 6 free." in ended.text  # 10 - (4 + 2 - 1 - 1)
    again = await client.post(f"/placements/{placements[0]['id']}/end", data={}, headers=csrf(client))
    assert again.status_code == 200 and "this stay had already ended" in again.text
    assert (await pool_of(sessionmaker, pool_id)).occupied == 4

    # Another shelter's staff may not ask about this pool.
    await login_page_session(client, "shelter_b")
    assert (await client.get(f"/placements/departure/{pool_id}", headers=csrf(client))).status_code == 403


async def test_follow_up_dates_reach_the_case_worker_home_and_are_marked_done_once(client, network) -> None:
    code, placements = await claimed(client, network, beds=1)
    await client.post(f"/api/v1/placements/{placements[0]['id']}/end", headers=network["shelter_a"].headers)
    await login_page_session(client, "worker")
    home = (await client.get("/home")).text
    assert "Follow-ups" in home and f"<code>{code}</code>" in home
    assert "7 days after the stay ended" in home and "30 days after the stay ended" in home

    follow_ups = (
        await client.get(f"/api/v1/placements/{placements[0]['id']}", headers=network["worker"].headers)
    ).json()["follow_ups"]
    first = follow_ups[0]["id"]
    # Only the case's side may mark it: the shelter, the police and another organisation see no such follow-up.
    for who in ("shelter_a", "coordinator"):
        refused = await client.post(f"/api/v1/placements/follow-ups/{first}/done", headers=network[who].headers)
        assert refused.status_code == 404, who
    done = await client.post(f"/placements/follow-ups/{first}/done", headers=csrf(client))
    assert done.status_code == 200 and "Done" in done.text
    again = await client.post(f"/api/v1/placements/follow-ups/{first}/done", headers=network["worker"].headers)
    assert again.status_code == 409 and again.json()["error"] == "follow_up_done"
    home = (await client.get("/home")).text
    assert "7 days after the stay ended" not in home and "30 days after the stay ended" in home


async def test_who_sees_placements(client, network) -> None:
    code, placements = await claimed(client, network, beds=1)
    one = f"/api/v1/placements/{placements[0]['id']}"
    for who in ("shelter_a", "worker", "worker_plain", "coordinator"):
        assert (await client.get(one, headers=network[who].headers)).status_code == 200, who
        listed = (await client.get("/api/v1/placements", headers=network[who].headers)).json()
        assert [p["case_code"] for p in listed] == [code], who
    # Another shelter sees none of them; police and approvers are not let in at all (they see no case codes).
    assert (await client.get(one, headers=network["shelter_b"].headers)).status_code == 404
    assert (await client.get("/api/v1/placements", headers=network["shelter_b"].headers)).json() == []
    for who in ("police", "approver", "auditor"):
        assert (await client.get("/api/v1/placements", headers=network[who].headers)).status_code == 403, who
    # Ending moves the pool's count: the facility's staff only. The case's worker and the coordinator see the stay
    # but do not end it (a worker ending it after the shelter's own Departure would count one departure twice).
    for who in ("coordinator", "worker"):
        refused = await client.post(f"{one}/end", headers=network[who].headers)
        assert refused.status_code == 403, who
    assert (await client.post(f"{one}/end", headers=network["shelter_b"].headers)).status_code == 404
    bad_filter = await client.get("/api/v1/placements?open=maybe", headers=network["worker"].headers)
    assert bad_filter.status_code == 422 and bad_filter.json()["error"] == "invalid_filter"


async def test_expected_end_is_set_by_either_side_and_checked(client, network) -> None:
    _code, placements = await claimed(client, network, beds=1)
    url = f"/api/v1/placements/{placements[0]['id']}"
    when = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    set_ = await client.patch(url, json={"expected_end": when.isoformat()}, headers=network["shelter_a"].headers)
    assert set_.status_code == 200 and datetime.fromisoformat(set_.json()["expected_end"]) == when
    for bad in ("2020-01-01T00:00:00+00:00", "2030-01-01T00:00:00", "tomorrow"):
        refused = await client.patch(url, json={"expected_end": bad}, headers=network["worker"].headers)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_expected_end", bad
    unknown = await client.patch(url, json={"expected_end": None, "name": "x"}, headers=network["worker"].headers)
    assert unknown.status_code == 400
    cleared = await client.patch(url, json={"expected_end": None}, headers=network["worker"].headers)
    assert cleared.status_code == 200 and cleared.json()["expected_end"] is None


def test_follow_up_dates_and_stay_figures_are_plain_arithmetic() -> None:
    end = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert follow_up_dates(end, [30, 7, 7, 0, -1]) == [(7, end + timedelta(days=7)), (30, end + timedelta(days=30))]
    day = timedelta(days=1)
    figures = stay_figures([(end - 2 * day, end), (end - 4 * day, end)], beds=10, days=30)
    assert (figures.ended, figures.average_stay_days, figures.turnover_per_bed_30_days) == (2, 3.0, 0.2)
    assert stay_figures([], beds=0, days=30).average_stay_days is None


async def test_occupancy_report_shows_length_of_stay_and_turnover(client, network, sessionmaker) -> None:
    _code, placements = await claimed(client, network, beds=1)
    async with sessionmaker() as session:
        # The stay began three days ago.
        await session.execute(
            update(Placement)
            .where(Placement.id == placements[0]["id"])
            .values(started_at=datetime.now(UTC) - timedelta(days=3))
        )
        await session.commit()
    await client.post(f"/api/v1/placements/{placements[0]['id']}/end", headers=network["shelter_a"].headers)
    await login_page_session(client, "shelter_a")
    report = (await client.get("/reports/occupancy?days=30")).text
    assert re.search(r'id="stays-ended">1<', report)
    assert "3 days" in report or "3.0 days" in report
    # Shelter A's beds: 10 + 3; one stay ended in 30 days.
    assert "0.08 stays ended per bed per 30 days" in report
    assert _code not in report  # counts only


async def test_retention_removes_case_links_once_with_concurrent_sweeps(
    client, network, sessionmaker, settings
) -> None:
    code, placements = await claimed(client, network, beds=2)
    await client.post(f"/api/v1/placements/{placements[0]['id']}/end", headers=network["shelter_a"].headers)
    old = datetime.now(UTC) - timedelta(days=settings.personal_link_retention_days + 1)
    async with sessionmaker() as session:
        await session.execute(
            update(Placement)
            .where(Placement.id == placements[0]["id"])
            .values(started_at=old - timedelta(days=2), ended_at=old)
        )
        await session.execute(update(Hold).where(Hold.case_code == code).values(ended_at=old))
        await session.commit()

    # Two sweeps at once, each with its own connection (the app's own sweeper may be a third).
    apps = [create_app(settings), create_app(settings)]
    await asyncio.gather(*(sweep_personal_links(app) for app in apps))
    await asyncio.gather(*(sweep_personal_links(app) for app in apps))
    for app in apps:
        await app.state.engine.dispose()

    async with sessionmaker() as session:
        ended = await session.get(Placement, placements[0]["id"])
        still = await session.get(Placement, placements[1]["id"])
        assert ended.case_code is None and ended.case_worker_id is None and ended.unlinked_at is not None
        assert still.case_code == code  # an open stay keeps its link
        assert (await session.execute(select(Hold.case_code))).scalars().all() == [None]
        events = (
            (await session.execute(select(NetworkEvent).where(NetworkEvent.action == AUDIT_ACTION))).scalars().all()
        )
        assert len(events) == 1
        assert events[0].detail["placements"] == 1 and events[0].detail["holds"] == 1
        assert code not in json.dumps(events[0].detail) and placements[0]["id"] not in json.dumps(events[0].detail)
        assert (await session.execute(select(FollowUp))).scalars().all()  # follow-ups stay, without any case link
    # The stay is still counted, and its facility's staff still see it, without a code.
    listed = (await client.get("/api/v1/placements", headers=network["shelter_a"].headers)).json()
    assert sorted(str(p["case_code"]) for p in listed) == sorted([code, "None"])


async def test_a_stay_grants_its_case_workers_the_address_while_it_lasts_and_a_day_after(
    client, network, sessionmaker
) -> None:
    code, placements = await claimed(client, network, beds=1)
    facility = f"/api/v1/facilities/{network.facilities['a'].id}"
    long_ago = datetime.now(UTC) - timedelta(days=5)
    async with sessionmaker() as session:
        # Claimed five days ago: the claimed hold alone no longer grants anything.
        await session.execute(update(Hold).where(Hold.case_code == code).values(ended_at=long_ago))
        await session.execute(update(Placement).values(started_at=long_ago - timedelta(hours=1)))
        await session.commit()
    assert (await client.get(facility, headers=network["worker"].headers)).json().get("address") == "123 rue Secrète"
    assert "address" not in (await client.get(facility, headers=network["police"].headers)).json()
    await client.post(f"/api/v1/placements/{placements[0]['id']}/end", headers=network["shelter_a"].headers)
    # Just ended: still granted (the settings' hours after the end) ...
    assert (await client.get(facility, headers=network["worker"].headers)).json().get("address") == "123 rue Secrète"
    async with sessionmaker() as session:
        await session.execute(update(Placement).values(ended_at=long_ago))
        await session.commit()
    # ... then never.
    assert "address" not in (await client.get(facility, headers=network["worker"].headers)).json()


async def test_the_stays_page_lists_them_and_keeps_a_bad_date_with_what_to_do(client, network) -> None:
    code, placements = await claimed(client, network, beds=1)
    await login_page_session(client, "shelter_a")
    page = await client.get("/placements")
    assert page.status_code == 200 and f"<code>{code}</code>" in page.text and "Open stays" in page.text
    token = {"_csrf_token": client.cookies["csrftoken"]}
    url = f"/placements/{placements[0]['id']}/expected-end"
    bad = await client.post(url, data={"expected_end": "2001-01-01", **token}, follow_redirects=False)
    assert bad.status_code == 422 and 'value="2001-01-01"' in bad.text
    assert "Enter a date after the start of the stay" in bad.text
    good_date = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    saved = await client.post(url, data={"expected_end": good_date, **token}, follow_redirects=False)
    assert saved.status_code == 303
    page = (await client.get("/placements")).text
    assert f'value="{good_date}"' in page and "expected to leave" in page
    ended = await client.post(
        f"/placements/{placements[0]['id']}/end", data={"next": "/placements", **token}, follow_redirects=False
    )
    assert ended.status_code == 303 and ended.headers["location"] == "/placements"
    page = (await client.get("/placements")).text
    assert "No open stay." in page and "Recently ended" in page and "Follow-up:" in page
