"""Transport to a bed (issue 13): a fund request names the hold or placement it serves, checked against the beds
and shown by its city only; recurring travel is approved once for a total and a count of trips, and each trip is
drawn without a new approval, never past either limit, even when drawn concurrently over real connections
(PostgreSQL with TEST_DATABASE_URL, SQLite otherwise)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.errors import Conflict
from ledger.funds import fund_summary
from ledger.models import Disbursement, Trip
from ledger.trips import draw_trip
from ledger.verify import verify_fund
from tests.conftest import Network, login_page_session
from tests.test_ledger_support import (
    assert_books_balance,
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
)
from tests.test_placements import case_hold, claimed, later


async def _request(client: AsyncTestClient, who: Any, fund_id: str, code: str, **extra: Any) -> Any:
    body = {
        "fund_id": fund_id,
        "case_code": code,
        "currency": "CAD",
        "category": "travel_interprovincial",
        "amount_cents": 9_000,
        "payee": "Orléans Express",
        **extra,
    }
    return await client.post("/api/v1/disbursements", json=body, headers=who.headers)


async def _count(sessionmaker: async_sessionmaker) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Disbursement))).scalar_one())


async def test_a_bus_ticket_names_its_hold_and_readers_see_the_city_never_the_address(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    code, hold = await case_hold(client, network, beds=1)
    answer = await _request(client, network["worker"], fund_id, code, hold_id=hold["id"])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    facility = network.pools["a"].facility_id
    assert body["hold_id"] == hold["id"] and body["placement_id"] is None
    assert body["serves"]["kind"] == "hold" and body["serves"]["id"] == hold["id"]
    seen = await client.get(f"/api/v1/disbursements/{body['id']}", headers=network["approver"].headers)
    assert seen.status_code == 200
    assert seen.json()["serves"] == body["serves"]
    # The city and province of the facility, and nothing that says where in it.
    assert set(body["serves"]) == {"kind", "id", "city", "province"}
    assert body["serves"]["city"] and facility not in str(body["serves"])
    for reader in ("worker", "approver"):
        text = (await client.get(f"/api/v1/disbursements/{body['id']}", headers=network[reader].headers)).text
        assert "address" not in text


async def test_the_address_of_a_confidential_bed_never_reaches_the_request(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    from beds.models import Facility

    async with sessionmaker() as session:
        facility = await session.get(Facility, network.pools["a"].facility_id)
        assert facility is not None
        facility.address = "123 Secret Street"
        session.add(facility)
        await session.commit()
        city = facility.city
    code, hold = await case_hold(client, network, beds=1)
    made = (await _request(client, network["worker"], fund_id, code, hold_id=hold["id"])).json()
    assert made["serves"]["city"] == city
    for reader in ("worker", "approver", "auditor"):
        answer = await client.get(f"/api/v1/disbursements/{made['id']}", headers=network[reader].headers)
        assert answer.status_code == 200
        assert "Secret" not in answer.text


async def test_a_request_names_a_placement_of_its_own_case(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    code, placements = await claimed(client, network, beds=1)
    answer = await _request(client, network["worker"], fund_id, code, placement_id=placements[0]["id"])
    assert answer.status_code == 201, answer.text
    assert answer.json()["serves"]["kind"] == "placement"
    assert answer.json()["placement_id"] == placements[0]["id"]


async def test_a_link_to_someone_elses_bed_or_another_case_is_refused_and_writes_nothing(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code, hold = await case_hold(client, network, beds=1)
    other_code = await new_case(client, network["worker"])
    # A police hold: the case worker's organisation is not its holder.
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
    police_hold = await client.post("/api/v1/holds", json=body, headers=network["police"].headers)
    assert police_hold.status_code == 201, police_hold.text
    before = await _count(sessionmaker)
    missing = await _request(client, network["worker"], fund_id, code, hold_id="0" * 32)
    assert missing.status_code == 404 and missing.json()["error"] == "hold_not_found"
    foreign = await _request(client, network["worker"], fund_id, code, hold_id=police_hold.json()["id"])
    assert foreign.status_code == 404
    assert foreign.json() == missing.json(), "another organisation's hold answers as if it did not exist"
    wrong_case = await _request(client, network["worker"], fund_id, other_code, hold_id=hold["id"])
    assert wrong_case.status_code == 422 and wrong_case.json()["error"] == "hold_other_case"
    no_placement = await _request(client, network["worker"], fund_id, code, placement_id="0" * 32)
    assert no_placement.status_code == 404 and no_placement.json()["error"] == "placement_not_found"
    both = await _request(client, network["worker"], fund_id, code, hold_id=hold["id"], placement_id="x")
    assert both.status_code == 422 and both.json()["error"] == "one_bed_link"
    assert await _count(sessionmaker) == before


async def test_a_placement_of_another_case_is_refused(client: AsyncTestClient, network: Network, fund_id: str) -> None:
    _code, placements = await claimed(client, network, beds=1)
    other_code = await new_case(client, network["worker"])
    answer = await _request(client, network["worker"], fund_id, other_code, placement_id=placements[0]["id"])
    assert answer.status_code == 422 and answer.json()["error"] == "placement_other_case"


async def _recurring(client: AsyncTestClient, network: Network, fund_id: str, total: int, trips: int) -> dict:
    code = await new_case(client, network["worker"])
    answer = await _request(
        client, network["worker"], fund_id, code, category="travel_local", amount_cents=total, trips=trips
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _trip(client: AsyncTestClient, who: Any, d: str, cents: int, day: str = "2026-12-10", **kw: Any) -> Any:
    return await client.post(
        f"/api/v1/disbursements/{d}/trips", json={"amount_cents": cents, "date": day}, headers=who.headers, **kw
    )


async def test_recurring_travel_is_approved_once_and_drawn_trip_by_trip_to_its_total(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    # A lead worker's 200.00 of local travel is on the fast path: approved once, the whole total pending.
    made = await _recurring(client, network, fund_id, 20_000, 3)
    assert (made["status"], made["trips_max"], made["trips_drawn"]) == ("approved", 3, 0)
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).committed_cents == 20_000
    first = await _trip(client, network["worker"], made["id"], 7_000)
    assert first.status_code == 201, first.text
    assert (first.json()["seq"], first.json()["remaining_cents"], first.json()["status"]) == (1, 13_000, "approved")
    assert first.json()["date"] == "2026-12-10"
    too_much = await _trip(client, network["worker"], made["id"], 13_001)
    assert too_much.status_code == 409 and too_much.json()["error"] == "trip_over_total"
    assert too_much.json()["remaining_cents"] == 13_000
    second = await _trip(client, network["approver"], made["id"], 5_000)
    assert second.status_code == 201
    # The third trip is the last by count: what is left of the total goes back to the fund.
    third = await _trip(client, network["worker"], made["id"], 1_000)
    assert (third.json()["status"], third.json()["paid_cents"], third.json()["trips_drawn"]) == ("paid", 13_000, 3)
    fourth = await _trip(client, network["worker"], made["id"], 1_000)
    assert fourth.status_code == 409 and fourth.json()["error"] == "trips_used_up"
    async with sessionmaker() as session:
        summary = await fund_summary(session, fund_id)
        audit = await verify_fund(session, fund_id)
    assert (summary.balance_cents, summary.committed_cents) == (1_000_000 - 13_000, 0)
    assert audit.ok, audit
    await assert_books_balance(sessionmaker, fund_id)
    # A recurring request is never paid whole by the payment path.
    other = await _recurring(client, network, fund_id, 10_000, 2)
    pay = await client.post(
        f"/api/v1/disbursements/{other['id']}/pay", json={"method": "manual"}, headers=network["approver"].headers
    )
    assert pay.status_code == 409 and pay.json()["error"] == "not_recurring"


async def test_a_trip_is_drawn_by_the_requester_or_an_approver_only_and_once_per_key(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    made = await _recurring(client, network, fund_id, 10_000, 4)
    stranger = await _trip(client, network["shelter_a"], made["id"], 1_000)
    assert stranger.status_code in (403, 404)
    other_worker = await _trip(client, network["worker_plain"], made["id"], 1_000)
    assert other_worker.status_code in (403, 404)
    key = {"Idempotency-Key": "trip-1"}
    once = await client.post(
        f"/api/v1/disbursements/{made['id']}/trips",
        json={"amount_cents": 2_000, "date": "2026-12-11"},
        headers={**network["worker"].headers, **key},
    )
    again = await client.post(
        f"/api/v1/disbursements/{made['id']}/trips",
        json={"amount_cents": 2_000, "date": "2026-12-11"},
        headers={**network["worker"].headers, **key},
    )
    assert once.status_code == 201 and again.status_code == 201
    assert once.json()["id"] == again.json()["id"]
    async with sessionmaker() as session:
        trips = (await session.execute(select(func.count()).select_from(Trip))).scalar_one()
    assert trips == 1
    bad = await client.post(
        f"/api/v1/disbursements/{made['id']}/trips",
        json={"amount_cents": "20", "date": "2026-12-11"},
        headers=network["worker"].headers,
    )
    assert bad.status_code in (400, 422)
    not_recurring = await _request(client, network["worker"], fund_id, await new_case(client, network["worker"]))
    refused = await _trip(client, network["approver"], not_recurring.json()["id"], 1_000)
    assert refused.status_code == 409 and refused.json()["error"] == "not_recurring"


async def test_recurring_requests_are_travel_with_a_sensible_count(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    code = await new_case(client, network["worker"])
    hotel = await _request(client, network["worker"], fund_id, code, category="hotel", nights=1, trips=2)
    assert hotel.status_code == 422 and hotel.json()["error"] == "trips_need_travel"
    zero = await _request(client, network["worker"], fund_id, code, trips=0)
    assert zero.status_code == 422 and zero.json()["error"] == "invalid_trips"


async def test_concurrent_draws_never_pass_the_count_or_the_total(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    """Twelve draws at once over their own connections: by count (5 trips) and by total (2 trips of 7,000 in
    20,000), exactly as many pass as fit, whatever the interleaving."""
    by_count = await _recurring(client, network, fund_id, 20_000, 5)
    by_total = await _recurring(client, network, fund_id, 20_000, 10)
    actor = network["worker"].id

    async def draw(d: str, cents: int) -> str:
        async with sessionmaker() as session:
            try:
                await draw_trip(session, d, amount_cents=cents, trip_date=date(2027, 1, 5), actor_user_id=actor)
            except Conflict as exc:
                return exc.code
            return "drawn"

    results = await asyncio.gather(*(draw(by_count["id"], 3_000) for _ in range(12)))
    assert results.count("drawn") == 5 and set(results) == {"drawn", "trips_used_up"}, results
    results = await asyncio.gather(*(draw(by_total["id"], 7_000) for _ in range(12)))
    assert results.count("drawn") == 2 and set(results) == {"drawn", "trip_over_total"}, results
    async with sessionmaker() as session:
        rows = {
            d.id: d
            for d in (
                await session.execute(
                    select(Disbursement).where(Disbursement.id.in_([by_count["id"], by_total["id"]]))  # type: ignore[attr-defined]
                )
            ).scalars()
        }
        trips = (await session.execute(select(Trip.disbursement_id, Trip.seq))).all()
        summary = await fund_summary(session, fund_id)
        audit = await verify_fund(session, fund_id)
    assert (rows[by_count["id"]].trips_drawn, rows[by_count["id"]].paid_cents) == (5, 15_000)
    assert rows[by_count["id"]].status == "paid" and rows[by_count["id"]].committed_cents == 0
    assert (rows[by_total["id"]].trips_drawn, rows[by_total["id"]].paid_cents) == (2, 14_000)
    assert rows[by_total["id"]].committed_cents == 6_000 and rows[by_total["id"]].status == "approved"
    assert sorted(s for d, s in trips if d == by_count["id"]) == [1, 2, 3, 4, 5]
    assert (summary.balance_cents, summary.committed_cents) == (1_000_000 - 29_000, 6_000)
    assert audit.ok, audit
    await assert_books_balance(sessionmaker, fund_id)


async def test_the_inbox_and_the_status_page_show_the_city_in_both_languages(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    from beds.models import Facility

    code, hold = await case_hold(client, network, beds=1)
    async with sessionmaker() as session:
        facility = await session.get(Facility, network.pools["a"].facility_id)
        assert facility is not None
        facility.address = "123 Secret Street"
        session.add(facility)
        await session.commit()
        city = facility.city
    # Above the fast path: it waits in the approvers' inbox.
    made = (await _request(client, network["worker"], fund_id, code, hold_id=hold["id"], amount_cents=60_000)).json()
    assert made["status"] == "pending_approval"
    await login_page_session(client, "approver")
    inbox = await client.get("/ledger/inbox")
    assert inbox.status_code == 200
    assert f"Travel to a bed in {city}" in inbox.text and "Secret" not in inbox.text
    await client.post("/logout", headers={"x-csrftoken": client.cookies.get("csrftoken") or ""})
    await login_page_session(client, "worker")
    page = await client.get(f"/ledger/requests/{made['id']}")
    assert f"Travel to a bed in {city}" in page.text and "Secret" not in page.text
    recurring = await _recurring(client, network, fund_id, 20_000, 4)
    await _trip(client, network["worker"], recurring["id"], 1_000)
    shown = await client.get(f"/ledger/requests/{recurring['id']}")
    assert "Recurring travel: trips drawn 1 of 4" in shown.text
    token = client.cookies.get("csrftoken") or ""
    await client.post("/settings/locale", data={"locale": "fr", "_csrf_token": token})
    french = await client.get(f"/ledger/requests/{made['id']}")
    assert f"Transport vers un lit à {city}" in french.text


async def test_cancelling_a_recurring_request_keeps_the_trips_drawn_and_frees_the_rest(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    made = await _recurring(client, network, fund_id, 20_000, 5)
    assert (await _trip(client, network["worker"], made["id"], 4_000)).status_code == 201
    cancelled = await client.post(f"/api/v1/disbursements/{made['id']}/cancel", headers=network["worker"].headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["paid_cents"], cancelled.json()["committed_cents"]) == (
        "cancelled",
        4_000,
        0,
    )
    after = await _trip(client, network["worker"], made["id"], 1_000)
    assert after.status_code == 409 and after.json()["error"] == "invalid_state"
    async with sessionmaker() as session:
        summary = await fund_summary(session, fund_id)
    assert (summary.balance_cents, summary.committed_cents) == (1_000_000 - 4_000, 0)
    await assert_books_balance(sessionmaker, fund_id)


async def test_the_status_page_draws_a_trip_once_and_keeps_what_was_typed_on_an_error(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    made = await _recurring(client, network, fund_id, 10_000, 3)
    await login_page_session(client, "worker")
    page = await client.get(f"/ledger/requests/{made['id']}")
    assert page.status_code == 200
    assert f'action="/ledger/requests/{made["id"]}/trips"' in page.text
    assert "/pay" not in page.text, "a recurring request is drawn trip by trip, never paid whole"
    token = client.cookies.get("csrftoken") or ""
    url = f"/ledger/requests/{made['id']}/trips"
    bad = await client.post(url, data={"amount": "12,5x", "date": "15/12", "drawn": "0", "_csrf_token": token})
    assert bad.status_code == 422
    assert "Write the amount of the trip in dollars" in bad.text and "Write the date of the trip" in bad.text
    assert 'value="12,5x"' in bad.text and 'value="15/12"' in bad.text
    over = await client.post(url, data={"amount": "150", "date": "2026-12-15", "drawn": "0", "_csrf_token": token})
    assert over.status_code == 422 and "more than what is left" in over.text and 'value="150"' in over.text
    form = {"amount": "42.50", "date": "2026-12-15", "drawn": "0", "_csrf_token": token}
    first = await client.post(url, data=form, follow_redirects=False)
    assert first.status_code == 303
    twice = await client.post(url, data=form)
    assert twice.status_code == 422 and "A trip was drawn since this page was shown" in twice.text
    async with sessionmaker() as session:
        drawn = (await session.execute(select(Trip.amount_cents, Trip.trip_date))).all()
    assert drawn == [(4_250, date(2026, 12, 15))]
    shown = await client.get(f"/ledger/requests/{made['id']}")
    assert "Recurring travel: trips drawn 1 of 3" in shown.text
