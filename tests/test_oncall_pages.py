"""When a facility answers and who is on call (its staff's settings form), the board's "answers now" filter,
and the approvers' roster page: errors in place with what was typed, in English and French."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.answering import answers_at, parse_clock
from beds.answering_models import FacilityAnswering
from beds.board import BoardFilter, list_facilities
from beds.models import Facility
from exchange.oncall.models import RosterNight
from exchange.oncall.push import new_vapid_keys
from exchange.ops.check import check_push
from exchange.settings import Settings
from ledger.anchor_models import NetworkEvent
from tests.conftest import Network, login_page_session
from tests.push_service import vapid_keys

MONTREAL = ZoneInfo("America/Toronto")


def _csrf(client: AsyncTestClient) -> str:
    return client.cookies.get("csrftoken") or ""


def test_answering_hours_are_read_on_the_facilitys_clock_and_may_run_past_midnight() -> None:
    office = {0: (parse_clock("08:00"), parse_clock("17:00"))}  # Mondays
    nights = {4: (parse_clock("20:00"), parse_clock("02:00"))}  # Friday evening into Saturday
    monday_9_local = datetime(2026, 12, 7, 9, 0, tzinfo=MONTREAL)
    assert answers_at(False, office, monday_9_local, MONTREAL)
    assert answers_at(False, office, monday_9_local.astimezone(UTC), MONTREAL)  # the same moment, in UTC
    assert not answers_at(False, office, monday_9_local.replace(hour=17), MONTREAL)  # the end is not included
    assert not answers_at(False, office, monday_9_local, ZoneInfo("America/Vancouver"))  # 06:00 there
    saturday_1 = datetime(2026, 12, 12, 1, 0, tzinfo=MONTREAL)
    assert answers_at(False, nights, saturday_1, MONTREAL)
    assert not answers_at(False, nights, saturday_1.replace(hour=3), MONTREAL)
    assert not answers_at(False, nights, datetime(2026, 12, 11, 1, 0, tzinfo=MONTREAL), MONTREAL)  # Friday 01:00
    assert answers_at(True, {}, saturday_1, MONTREAL)


async def test_staff_set_hours_and_contacts_errors_keep_what_was_typed(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    facility = network.facilities["a"]
    await login_page_session(client, "shelter_a")
    page = await client.get(f"/facilities/{facility.id}/answering")
    assert page.status_code == 200
    assert "alpha@shelter.test" in page.text  # the facility's on-call address to start from
    typed = {
        "_csrf_token": _csrf(client),
        "day0_start": "08:00",
        "day0_end": "",
        "day2_start": "09:00",
        "day2_end": "17:30",
        "contacts": "night@alpha.test\nnot an address",
    }
    refused = await client.post(f"/facilities/{facility.id}/answering", data=typed)
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "Give both a start and an end time, or leave both empty." in text
    assert 'value="08:00"' in text and 'value="17:30"' in text and "not an address" in text
    async with sessionmaker() as session:
        assert await session.get(FacilityAnswering, facility.id) is None  # nothing half-saved

    typed.update({"day0_end": "17:00"})
    refused = await client.post(f"/facilities/{facility.id}/answering", data=typed)
    assert refused.status_code == 422
    assert "Write one e-mail address per line" in html.unescape(refused.text)

    typed["contacts"] = "night@alpha.test\nbackup@alpha.test\nNIGHT@alpha.test"
    saved = await client.post(f"/facilities/{facility.id}/answering", data=typed, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    async with sessionmaker() as session:
        row = await session.get(FacilityAnswering, facility.id)
    assert row is not None and not row.round_the_clock
    assert row.hours == {"0": ["08:00", "17:00"], "2": ["09:00", "17:30"]}
    assert row.contacts == ["night@alpha.test", "backup@alpha.test"]
    assert row.time_zone == "America/Toronto"
    async with sessionmaker() as session:
        assert (await session.get(Facility, facility.id)).oncall_email == "night@alpha.test"  # the first one

    await client.post("/settings/locale", data={"locale": "fr", "next": "/", "_csrf_token": _csrf(client)})
    typed["day3_start"] = "25:00"
    typed["day3_end"] = "26:00"
    refused = await client.post(f"/facilities/{facility.id}/answering", data=typed)
    assert refused.status_code == 422
    assert "Écrivez l\u2019heure sous la forme HH:MM" in html.unescape(refused.text)


async def test_only_the_facilitys_own_staff_set_its_hours(client: AsyncTestClient, network: Network) -> None:
    await login_page_session(client, "shelter_b")
    other = await client.get(f"/facilities/{network.facilities['a'].id}/answering")
    assert other.status_code == 403
    sent = await client.post(
        f"/facilities/{network.facilities['a'].id}/answering",
        data={"_csrf_token": _csrf(client), "round_the_clock": "on", "contacts": "x@y.test"},
    )
    assert sent.status_code == 403


async def test_a_change_of_where_a_shelters_requests_are_mailed_is_in_the_network_audit(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    """A network admin may set a facility's on-call contacts; a phished admin account redirecting a safe house's
    requests and escalations leaves a trace, and so does the shelter's own change. Saving the same contacts again
    writes nothing."""
    facility = network.facilities["a"]
    for who, contacts, by_own_staff in (
        ("admin", "attacker@evil.test", False),
        ("shelter_a", "night@alpha.test", True),
        ("shelter_a", "night@alpha.test", None),
    ):
        await login_page_session(client, who)
        data = {"_csrf_token": _csrf(client), "round_the_clock": "on", "contacts": contacts}
        saved = await client.post(f"/facilities/{facility.id}/answering", data=data, follow_redirects=False)
        assert saved.status_code == 303, (who, saved.text)
        async with sessionmaker() as session:
            events = (
                (await session.execute(select(NetworkEvent).where(NetworkEvent.action == "facility_contacts_changed")))
                .scalars()
                .all()
            )
        if by_own_staff is None:
            assert len(events) == 2, "an unchanged list is no change"
            continue
        last = max(events, key=lambda e: e.seq)
        assert last.detail["facility"] == facility.id and last.detail["contacts"] == [contacts]
        assert last.detail["by_own_staff"] is by_own_staff
        assert last.actor_user_id == network[who].id


async def test_the_board_filters_facilities_that_answer_now(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    later = datetime.now(UTC).astimezone(ZoneInfo("America/Toronto")) + timedelta(hours=3)
    closed_now = {
        str(day): [later.strftime("%H:%M"), (later + timedelta(hours=1)).strftime("%H:%M")] for day in range(7)
    }
    async with sessionmaker() as session:
        session.add(FacilityAnswering(facility_id=network.facilities["a"].id, round_the_clock=True))
        session.add(
            FacilityAnswering(
                facility_id=network.facilities["b"].id,
                round_the_clock=False,
                hours=closed_now,
                time_zone="America/Toronto",
            )
        )
        await session.commit()
        found = await list_facilities(session, BoardFilter(criteria=frozenset({"answers_now"})))
        everyone = await list_facilities(session, BoardFilter())
    assert [li.facility.name for li in found] == ["Maison Alpha"]
    assert len(everyone) == 2
    await login_page_session(client, "police")
    board = await client.get("/", params={"criteria": "answers_now"})
    assert board.status_code == 200
    assert "Maison Alpha" in board.text and "Bravo House" not in board.text
    assert 'value="answers_now" checked' in board.text
    api = await client.get("/api/v1/facilities", params={"answers_now": "true"}, headers=network["police"].headers)
    assert [f["name"] for f in api.json()] == ["Maison Alpha"]


async def test_the_roster_page_puts_approvers_on_call_and_refuses_in_plain_words(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    await login_page_session(client, "worker")
    assert (await client.get("/oncall/roster")).status_code == 403
    await login_page_session(client, "admin")
    page = await client.get("/oncall/roster")
    assert page.status_code == 200 and "Nobody is on call yet" in page.text
    night = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    refused = await client.post(
        "/oncall/roster", data={"_csrf_token": _csrf(client), "night": night, "approver_id": network["worker"].id}
    )
    assert refused.status_code == 422
    assert "Choose one of the fund approvers." in refused.text and f'value="{night}"' in refused.text
    past = await client.post(
        "/oncall/roster",
        data={"_csrf_token": _csrf(client), "night": "2020-01-01", "approver_id": network["approver"].id},
    )
    assert past.status_code == 422 and "Choose a night from tonight" in past.text
    added = await client.post(
        "/oncall/roster",
        data={"_csrf_token": _csrf(client), "night": night, "approver_id": network["approver"].id},
        follow_redirects=False,
    )
    assert added.status_code == 303
    again = await client.post(
        "/oncall/roster",
        data={"_csrf_token": _csrf(client), "night": night, "approver_id": network["approver"].id},
    )
    assert again.status_code == 422 and "already on call that night" in again.text
    async with sessionmaker() as session:
        entries = (await session.execute(select(RosterNight))).scalars().all()
    assert [(e.night.isoformat(), e.user_id, e.set_by) for e in entries] == [
        (night, network["approver"].id, network["admin"].id)
    ]
    listed = await client.get("/oncall/roster")
    assert "Approver" in listed.text and night in listed.text
    removed = await client.post(
        f"/oncall/roster/{entries[0].id}/remove", data={"_csrf_token": _csrf(client)}, follow_redirects=False
    )
    assert removed.status_code == 303
    async with sessionmaker() as session:
        assert (await session.execute(select(RosterNight))).scalars().all() == []


def test_refuge_check_says_whether_the_vapid_keys_are_one_pair() -> None:
    public, private = new_vapid_keys()  # what `refuge push-keygen` prints
    _, other_private = vapid_keys()
    assert check_push(Settings()).ok
    assert check_push(Settings(vapid_public_key=public, vapid_private_key=private)).ok
    assert not check_push(Settings(vapid_public_key=public)).ok
    assert not check_push(Settings(vapid_public_key=public, vapid_private_key=other_private)).ok
