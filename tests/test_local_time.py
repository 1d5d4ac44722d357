"""Local time: times shown in the zone of what they are about (a facility's or an operation's province, or the
person's own zone) with the zone's abbreviation, forms read in a named zone, daylight saving and Newfoundland."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from beds.errors import Invalid
from beds.holds_models import Hold, Operation
from beds.models import Facility
from exchange.accounts.models import ApiToken, Organisation, User
from exchange.web import i18n, localtime
from tests.conftest import LiveServer, Network, login_page_session
from tests.test_browser import (
    Cast,
    fixture_browser,  # noqa: F401  (fixture)
    fixture_cast,  # noqa: F401  (fixture)
)

DASH = "\u2013"  # between the start and the end of a window
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

TORONTO = ZoneInfo("America/Toronto")
ST_JOHNS = ZoneInfo("America/St_Johns")
VANCOUVER = ZoneInfo("America/Vancouver")


@pytest.fixture(name="english")
def fixture_english() -> Any:
    i18n.set_locale("en")
    yield
    i18n.set_locale("en")


def in_french() -> None:
    i18n.set_locale("fr")


def next_sunday(year: int, month: int, nth: int) -> date:
    """The nth Sunday of a month: North American clocks change on the 2nd Sunday of March, 1st of November."""
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))


def future(month: int, nth_sunday: int | None = None, day: int = 15) -> date:
    """That day in the first year it is still to come (the operation form refuses a window already over)."""
    today = datetime.now(UTC).date()
    for year in (today.year, today.year + 1):
        when = next_sunday(year, month, nth_sunday) if nth_sunday else date(year, month, day)
        if when > today + timedelta(days=1):
            return when
    raise AssertionError("unreachable")


def page(response: Any) -> str:
    return html.unescape(response.text)


def plain(response: Any) -> str:
    """The page's text as read, tags taken out."""
    return re.sub(r"<[^>]+>", "", page(response))


async def post_operation(client: Any, start: str, end: str, province: str = "QC", lang: str = "en") -> Any:
    return await client.post(
        "/operations",
        data={
            "code_name": "HERON",
            "province": province,
            "window_start": start,
            "window_end": end,
            "need_women": "2",
            "_csrf_token": client.cookies["csrftoken"],
        },
        headers={"Accept-Language": lang},
        follow_redirects=False,
    )


# The functions, in both languages


def test_times_show_the_zone_abbreviation_in_english_and_french(english: None) -> None:
    winter = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 2, 1, 0, tzinfo=UTC)
    assert localtime.format_datetime(winter, localtime.zone_for("QC")) == "2026-12-01 21:00 EST"
    assert localtime.format_datetime(summer, "QC") == "2026-07-01 21:00 EDT"
    assert localtime.format_datetime(winter, "BC") == "2026-12-01 18:00 PST"
    assert localtime.format_datetime(winter, "SK") == "2026-12-01 20:00 CST"
    assert localtime.format_datetime(summer, "SK") == "2026-07-01 19:00 CST"  # Saskatchewan keeps standard time
    assert localtime.format_datetime(winter, "YT") == "2026-12-01 19:00 MST"  # Yukon: UTC-7 all year
    in_french()
    assert localtime.format_datetime(winter, "QC") == "2026-12-01 21 h 00 HNE"
    assert localtime.format_datetime(summer, "QC") == "2026-07-01 21 h 00 HAE"
    assert localtime.format_datetime(winter, "NS") == "2026-12-01 22 h 00 HNA"


def test_newfoundland_is_three_and_a_half_hours_behind(english: None) -> None:
    at = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    assert localtime.format_datetime(at, "NL") == "2026-12-01 21:00 NST"
    in_french()
    assert localtime.format_datetime(at, "NL") == "2026-12-01 21 h 00 HNT"
    assert localtime.parse_local("2026-12-01T21:00", "NL") == at


def test_relative_times_and_deadlines(english: None) -> None:
    now = datetime(2026, 12, 2, 13, 21, tzinfo=UTC)
    assert localtime.format_relative(now + timedelta(minutes=25, seconds=40), now) == "in 25 min"
    assert localtime.format_relative(now - timedelta(minutes=25), now) == "25 min ago"
    assert localtime.format_relative(now - timedelta(hours=3), now) == "3 h ago"
    assert localtime.format_relative(now + timedelta(hours=2, minutes=5), now) == "in 2 h 05 min"
    assert localtime.format_relative(now + timedelta(days=2, hours=1), now) == "in 2 days"
    assert localtime.format_relative(now + timedelta(seconds=20), now) == "now"
    deadline = now + timedelta(minutes=25)  # 13:46 UTC is 08:46 in Montréal
    assert localtime.format_deadline(deadline, now, "QC") == "08:46 EST · in 25 min"
    # Another day there: the date is said too.
    assert localtime.format_deadline(now + timedelta(hours=20), now, "QC") == "2026-12-03 04:21 EST · in 20 h"
    in_french()
    assert localtime.format_relative(now + timedelta(minutes=25), now) == "dans 25 min"
    assert localtime.format_relative(now - timedelta(hours=3), now) == "il y a 3 h"
    assert localtime.format_deadline(deadline, now, "QC") == "08 h 46 HNE · dans 25 min"


def test_daylight_saving_fall_back_takes_the_first_and_spring_forward_is_refused() -> None:
    # 01:30 happens twice in Toronto on 2026-11-01: the first, still on daylight time (UTC-4).
    assert localtime.parse_local("2026-11-01T01:30", TORONTO) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert localtime.parse_local("2026-11-01T02:30", "ON") == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    # 02:30 never happens on 2027-03-14: the clocks go from 02:00 to 03:00.
    with pytest.raises(Invalid) as refused:
        localtime.parse_local("2027-03-14T02:30", TORONTO)
    assert refused.value.code == "nonexistent_local_time" and "daylight saving" in refused.value.detail
    assert localtime.parse_local("2027-03-14T03:30", TORONTO) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    # Newfoundland changes at the same local hour, half an hour off.
    with pytest.raises(Invalid):
        localtime.parse_local("2027-03-14T02:10", "NL")
    with pytest.raises(Invalid) as malformed:
        localtime.parse_local("tomorrow night", "QC")
    assert malformed.value.code == "invalid_local_time"
    # A value with its own offset is taken as written.
    assert localtime.parse_local("2026-12-01T21:00-05:00", "BC") == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def test_every_province_has_a_zone_and_a_place() -> None:
    from beds.models import PROVINCES

    assert set(localtime.PROVINCE_ZONES) == set(PROVINCES) == set(localtime.PROVINCE_PLACES)
    assert set(localtime.PROVINCE_ZONES.values()) <= set(localtime.ZONE_CHOICES)
    assert localtime.zone_for("nowhere").key == "America/Toronto"


# Through the pages


async def test_an_operation_typed_in_montreal_time_is_stored_in_utc_and_shown_back(client, network, sessionmaker):
    await login_page_session(client, "police")  # a Québec police service
    form = await client.get("/operations")
    assert "Window start (Montréal time, E" in plain(form) and "Window end (Montréal time, E" in plain(form)
    assert re.search(r'<option value="?QC"? data-zone="Montréal time, E[SD]T" selected>', page(form))
    french = plain(await client.get("/operations", headers={"Accept-Language": "fr"}))
    assert "Début de la fenêtre (heure locale à Montréal, H" in french
    evening = future(1)
    created = await post_operation(client, f"{evening}T21:00", f"{evening + timedelta(days=1)}T06:00")
    assert created.status_code == 303, created.text
    async with sessionmaker() as session:
        operation = (await session.execute(select(Operation))).scalar_one()
    morning = evening + timedelta(days=1)
    assert operation.window_start == datetime(morning.year, morning.month, morning.day, 2, 0, tzinfo=UTC)
    assert operation.window_end == datetime(morning.year, morning.month, morning.day, 11, 0, tzinfo=UTC)
    shown = page(await client.get(created.headers["location"]))
    assert f"{evening} 21:00 EST {DASH} {morning} 06:00 EST" in shown
    listing = page(await client.get("/operations"))
    assert f"{evening} 21:00 EST {DASH} {morning} 06:00 EST" in listing
    french = page(await client.get(created.headers["location"], headers={"Accept-Language": "fr-CA"}))
    assert f"{evening} 21 h 00 HNE {DASH} {morning} 06 h 00 HNE" in french


async def test_an_operation_in_newfoundland_reads_newfoundland_time(client, network, sessionmaker):
    await login_page_session(client, "police")
    evening = future(1)
    created = await post_operation(client, f"{evening}T21:00", f"{evening}T23:30", province="NL")
    assert created.status_code == 303, created.text
    async with sessionmaker() as session:
        operation = (await session.execute(select(Operation))).scalar_one()
    after_midnight = evening + timedelta(days=1)
    assert operation.window_start == datetime(
        after_midnight.year, after_midnight.month, after_midnight.day, 0, 30, tzinfo=UTC
    )
    shown = page(await client.get(created.headers["location"]))
    assert f"{evening} 21:00 NST {DASH} {evening} 23:30 NST" in shown


async def test_a_time_the_clocks_skip_is_refused_beside_the_field_with_what_was_typed(client, network, sessionmaker):
    await login_page_session(client, "police")
    spring = future(3, nth_sunday=2)  # the second Sunday of March: 02:00 becomes 03:00
    refused = await post_operation(client, f"{spring}T02:30", f"{spring}T09:00")
    assert refused.status_code == 422, refused.text
    text = page(refused)
    assert "does not exist here" in text and "daylight saving" in text
    for typed in (f"{spring}T02:30", f"{spring}T09:00", "HERON"):
        assert re.search(f'value="?{typed}"?[ >]', text), typed
    start = text[text.index('name="window_start"') : text.index('name="window_end"')]
    assert re.search(r'aria-invalid="?true"? aria-describedby="?window_start-error', start), start
    assert re.search(r'id="?window_start-error"?[^>]*>This time does not exist here', text)
    french = page(await post_operation(client, f"{spring}T02:30", f"{spring}T09:00", lang="fr"))
    assert "Cette heure n'existe pas ici" in french
    async with sessionmaker() as session:
        assert (await session.execute(select(Operation))).first() is None
    # The fall-back hour: 01:30 happens twice; the operation starts at the first (still daylight time, UTC-4).
    autumn = future(11, nth_sunday=1)
    created = await post_operation(client, f"{autumn}T01:30", f"{autumn}T06:00")
    assert created.status_code == 303, created.text
    async with sessionmaker() as session:
        operation = (await session.execute(select(Operation))).scalar_one()
    assert operation.window_start == datetime(autumn.year, autumn.month, autumn.day, 5, 30, tzinfo=UTC)
    assert operation.window_end == datetime(autumn.year, autumn.month, autumn.day, 11, 0, tzinfo=UTC)
    shown = page(await client.get(created.headers["location"]))
    assert f"{autumn} 01:30 EDT {DASH} {autumn} 06:00 EST" in shown


def expected_clock(at: datetime, zone: ZoneInfo, standard: str, daylight: str) -> str:
    """Computed here with zoneinfo alone, not with the module under test."""
    local = at.astimezone(zone)
    return f"{local:%H:%M} {daylight if local.dst() else standard}"


async def test_a_shelter_sees_the_deadline_in_its_facility_zone(client, network, sessionmaker):
    body = {
        "code_name": "NIGHTJAR",
        "province": "QC",
        "city": "Montréal",
        "window_start": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "window_end": (datetime.now(UTC) + timedelta(hours=6)).isoformat(),
        "needs": [{"profile": "women", "count": 2}],
    }
    police = network["police"].headers
    op = (await client.post("/api/v1/operations", json=body, headers=police)).json()
    allocated = await client.post(f"/api/v1/operations/{op['id']}/allocate", headers=police)
    assert allocated.status_code in (200, 201), allocated.text
    # Maison Alpha moves to St. John's: its staff (a Québec organisation) read its deadlines on its clock.
    async with sessionmaker() as session:
        await session.execute(update(Facility).where(Facility.id == network.facilities["a"].id).values(province="NL"))
        await session.commit()
        hold = (await session.execute(select(Hold))).scalar_one()
    await login_page_session(client, "shelter_a")
    text = page(await client.get("/requests"))
    answer_by = expected_clock(hold.respond_by, ST_JOHNS, "NST", "NDT")
    minutes = int((hold.respond_by - datetime.now(UTC)).total_seconds() // 60)
    assert f'Answer by <span class="deadline">{answer_by}' in text or f"Answer by {answer_by}" in text, text
    assert f"{answer_by} · in {minutes} min" in text or f"{answer_by} · in {minutes - 1} min" in text
    french = page(await client.get("/requests", headers={"Accept-Language": "fr"}))
    assert answer_by.replace(":", " h ").replace("NST", "HNT").replace("NDT", "HAT") in french
    assert "dans " in french


async def test_a_users_chosen_zone_wins_over_the_organisation_province(client, network, sessionmaker):
    await login_page_session(client, "police")
    async with sessionmaker() as session:
        token = (await session.execute(select(ApiToken).where(ApiToken.user_id == network["police"].id))).scalar_one()
    account = page(await client.get("/account"))
    assert expected_clock(token.created_at, TORONTO, "EST", "EDT") in account  # Québec police: Eastern time
    csrf = client.cookies["csrftoken"]
    chosen = await client.post(
        "/account/time-zone", data={"time_zone": "America/Vancouver", "_csrf_token": csrf}, follow_redirects=False
    )
    assert chosen.status_code == 303
    account = page(await client.get("/account"))
    assert expected_clock(token.created_at, VANCOUVER, "PST", "PDT") in account
    assert re.search(r'<option value="?America/Vancouver"? selected>Pacific time \(Vancouver\)</option>', account)
    # Pages about a place keep that place's zone whatever the person chose.
    assert "Window start (Montréal time, E" in plain(await client.get("/operations"))
    # A zone that is not in the list: the page again, the message beside the choice, nothing changed.
    refused = await client.post("/account/time-zone", data={"time_zone": "Europe/Paris", "_csrf_token": csrf})
    assert refused.status_code == 422 and "Choose one of the time zones in the list." in page(refused)
    async with sessionmaker() as session:
        assert (await session.get(User, network["police"].id)).time_zone == "America/Vancouver"  # type: ignore[union-attr]
    # Back to the organisation's province; and when that province is Newfoundland, its zone.
    await client.post("/account/time-zone", data={"time_zone": "", "_csrf_token": csrf}, follow_redirects=False)
    async with sessionmaker() as session:
        await session.execute(
            update(Organisation).where(Organisation.id == network.orgs["police"].id).values(province="NL")
        )
        await session.commit()
    account = page(await client.get("/account", headers={"Accept-Language": "fr"}))
    local = token.created_at.astimezone(ST_JOHNS)
    assert f"{local:%H} h {local:%M} {'HAT' if local.dst() else 'HNT'}" in account
    assert "Heure de Terre-Neuve (St. John's)" in account


async def test_an_organisation_without_a_province_takes_its_first_facility_zone(client, network, sessionmaker):
    async with sessionmaker() as session:
        await session.execute(
            update(Organisation).where(Organisation.id == network.orgs["shelter_b"].id).values(province="")
        )
        await session.commit()
        user = await session.get(User, network["shelter_b"].id)
    assert await localtime.place_of_user(sessionmaker, user) == ("America/Toronto", "ON")  # Bravo House, Toronto
    async with sessionmaker() as session:
        await session.execute(update(Facility).where(Facility.id == network.facilities["b"].id).values(province="BC"))
        await session.commit()
    assert await localtime.place_of_user(sessionmaker, user) == ("America/Vancouver", "BC")
    await login_page_session(client, "shelter_b")
    assert "Vancouver time, P" in page(await client.get("/account"))


async def test_in_a_browser_the_form_names_the_zone_of_the_province_chosen(
    cast: Cast, live_server: LiveServer, network: Network, sessionmaker: Any
) -> None:
    police = await cast.login("police", **PHONE)
    page = police.page
    await page.goto(live_server.url + "/operations")
    start = page.get_by_label(re.compile(r"^Window start"))
    await expect(start).to_be_visible()
    await expect(page.locator("#operation-form")).to_contain_text(re.compile(r"Window start \(Montréal time, E[SD]T\)"))
    # Newfoundland chosen: the labels say so before anything is sent, and the times are read on its clock.
    await page.get_by_label("Province").select_option("NL")
    await expect(page.locator("#operation-form")).to_contain_text(
        re.compile(r"Window start \(St. John's time, N[SD]T\)")
    )
    await expect(page.locator("#operation-form")).to_contain_text(re.compile(r"Window end \(St. John's time, N[SD]T\)"))
    evening = future(1)
    await page.get_by_label("Code name").fill("PUFFIN")
    await start.fill(f"{evening}T21:00")
    await page.get_by_label(re.compile(r"^Window end")).fill(f"{evening}T23:30")
    await page.locator("input[name='need_women']").fill("1")
    await police.shot("local_time_operation_form_newfoundland_phone")
    await page.get_by_role("button", name="Record the operation").click()
    await page.wait_for_url(re.compile(r"/operations/[0-9a-f]{32}$"))
    await expect(page.locator("main")).to_contain_text(f"{evening} 21:00 NST {DASH} {evening} 23:30 NST")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    async with sessionmaker() as session:
        operation = (await session.execute(select(Operation))).scalar_one()
    assert operation.window_start.astimezone(UTC).strftime("%H:%M") == "00:30"
    cast.assert_no_errors()
