"""Local time: each province's time zone, the zone of the current request, and times shown and read in it.

Stored times stay aware UTC. A page shows a time in the zone of what it is about (a facility's or an
operation's province) or, for a person's own things, in the request's zone: the zone the user chose on
/account, else the province of their organisation (or of its first facility), else Eastern time.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime as _babel_datetime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.errors import Invalid
from beds.models import Facility
from exchange.accounts.models import Organisation
from exchange.web import i18n
from exchange.web.i18n import N_, get_locale, gettext

DEFAULT_ZONE = "America/Toronto"

# Each province's (or territory's) main zone. Québec reads Eastern time (America/Montreal is an alias of it).
PROVINCE_ZONES: dict[str, str] = {
    "NL": "America/St_Johns",
    "NS": "America/Halifax",
    "PE": "America/Halifax",
    "NB": "America/Moncton",
    "QC": "America/Toronto",
    "ON": "America/Toronto",
    "MB": "America/Winnipeg",
    "SK": "America/Regina",
    "AB": "America/Edmonton",
    "BC": "America/Vancouver",
    "YT": "America/Whitehorse",
    "NT": "America/Yellowknife",
    "NU": "America/Iqaluit",
}

# Where a form says whose clock it reads ("Montréal time"): the province's largest city on that clock.
PROVINCE_PLACES: dict[str, str] = {
    "NL": "St. John's",
    "NS": "Halifax",
    "PE": "Charlottetown",
    "NB": "Moncton",
    "QC": "Montréal",
    "ON": "Toronto",
    "MB": "Winnipeg",
    "SK": "Regina",
    "AB": "Edmonton",
    "BC": "Vancouver",
    "YT": "Whitehorse",
    "NT": "Yellowknife",
    "NU": "Iqaluit",
}

# The zones a person may choose on /account, west to east, named in the page's language where it is shown.
ZONE_CHOICES: dict[str, str] = {
    "America/Vancouver": N_("Pacific time (Vancouver)"),
    "America/Whitehorse": N_("Yukon time (Whitehorse)"),
    "America/Edmonton": N_("Mountain time (Edmonton, Calgary)"),
    "America/Yellowknife": N_("Mountain time (Yellowknife)"),
    "America/Regina": N_("Central time without daylight saving (Regina, Saskatoon)"),
    "America/Winnipeg": N_("Central time (Winnipeg)"),
    "America/Toronto": N_("Eastern time (Toronto, Montréal, Ottawa)"),
    "America/Iqaluit": N_("Eastern time (Iqaluit)"),
    "America/Moncton": N_("Atlantic time (Moncton)"),
    "America/Halifax": N_("Atlantic time (Halifax, Charlottetown)"),
    "America/St_Johns": N_("Newfoundland time (St. John's)"),
}
# The same, for a zone named without its province (a person's own choice).
ZONE_PLACES: dict[str, str] = {
    "America/Vancouver": "Vancouver",
    "America/Whitehorse": "Whitehorse",
    "America/Edmonton": "Edmonton",
    "America/Yellowknife": "Yellowknife",
    "America/Regina": "Regina",
    "America/Winnipeg": "Winnipeg",
    "America/Toronto": "Toronto",
    "America/Iqaluit": "Iqaluit",
    "America/Moncton": "Moncton",
    "America/Halifax": "Halifax",
    "America/St_Johns": "St. John's",
}

# Babel has no abbreviation for Yukon's all-year UTC-7 (since 2020): it is Mountain Standard Time.
_ABBREVIATION_GAPS: dict[tuple[str, str], str] = {
    ("America/Whitehorse", "en"): "MST",
    ("America/Whitehorse", "fr"): "HNR",
}
# Jinja calls written before local time passed a babel format as the second argument: it means "this zone".
_LEGACY_FORMATS = frozenset({"short", "medium", "long", "full"})

_abbreviations: dict[tuple[str, timedelta | None, timedelta | None, str], str] = {}

_current_zone: ContextVar[str] = ContextVar("time_zone", default=DEFAULT_ZONE)
# The province of the person's organisation: where a form about a place starts (the operation form's province).
_current_province: ContextVar[str] = ContextVar("province", default="")


def zone_for(province: str | None) -> ZoneInfo:
    """The zone of a province code (Eastern time for an unknown or empty one)."""
    return ZoneInfo(PROVINCE_ZONES.get((province or "").upper(), DEFAULT_ZONE))


def is_known_zone(name: str) -> bool:
    return name in ZONE_CHOICES


def set_zone(name: str | None) -> None:
    _current_zone.set(name if name and is_known_zone(name) else DEFAULT_ZONE)


def current_zone() -> ZoneInfo:
    return ZoneInfo(_current_zone.get())


def current_province() -> str:
    return _current_province.get()


def resolve(zone: tzinfo | str | None) -> tzinfo:
    """A zone from what a template has at hand: a ZoneInfo, a province code, an IANA name, or None (the request's)."""
    if zone is None or (isinstance(zone, str) and (not zone or zone in _LEGACY_FORMATS)):
        return current_zone()
    if isinstance(zone, tzinfo):
        return zone
    if zone.upper() in PROVINCE_ZONES:
        return zone_for(zone)
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return current_zone()


def _in_zone(value: datetime, zone: tzinfo | str | None) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(resolve(zone))


def abbreviation(local: datetime) -> str:
    """EST, EDT, NST, HNE, HAT...: the Canadian English or French abbreviation of a zone-aware local time."""
    lang = get_locale()
    key = getattr(local.tzinfo, "key", "")
    gap = _ABBREVIATION_GAPS.get((key, lang))
    if gap:
        return gap
    cache_key = (key, local.utcoffset(), local.dst(), lang)
    text = _abbreviations.get(cache_key)
    if text is None:
        text = _babel_datetime(local, "z", tzinfo=local.tzinfo, locale=f"{lang}_CA")
        if text[:1] in "+-":  # no name for it: say the offset the way people read it
            text = "UTC" + text[:3] + (":" + text[3:] if text[3:] != "00" else "")
        # A zone's abbreviation depends only on its offset and daylight saving at that moment: a page of 200
        # rows asks babel once per zone and season.
        _abbreviations[cache_key] = text
    return text


def _clock(local: datetime) -> str:
    """21:00 in English, 21 h 00 in Canadian French."""
    return local.strftime("%H h %M") if get_locale() == "fr" else local.strftime("%H:%M")


def format_datetime(value: datetime | None, zone: tzinfo | str | None = None) -> str:
    """`2026-12-02 21:00 EST`, or `2026-12-02 21 h 00 HNE` in French: always the date, the clock and the zone."""
    if value is None:
        return ""
    local = _in_zone(value, zone)
    return f"{local:%Y-%m-%d} {_clock(local)} {abbreviation(local)}"


def format_time(value: datetime | None, zone: tzinfo | str | None = None) -> str:
    """`08:46 EST`: the clock and the zone, for a time everyone knows is today."""
    if value is None:
        return ""
    local = _in_zone(value, zone)
    return f"{_clock(local)} {abbreviation(local)}"


# `in 25 min`, `25 min ago`, `dans 25 min`, `il y a 3 h` (one relative form for every page).
format_relative = i18n.format_ago


def format_deadline(value: datetime | None, now: datetime, zone: tzinfo | str | None = None) -> str:
    """`08:46 EST · in 25 min`: the local clock (with the date when it is not today there) and how far it is."""
    if value is None:
        return ""
    local = _in_zone(value, zone)
    today = _in_zone(now, zone).date()
    absolute = format_time(value, zone) if local.date() == today else format_datetime(value, zone)
    return f"{absolute} · {format_relative(value, now)}"


def zone_label(zone: tzinfo | str | None = None, at: datetime | None = None) -> str:
    """`Montréal time, EST` (`heure locale à Montréal, HNE`): whose clock a form reads, with its abbreviation now."""
    place = PROVINCE_PLACES.get(zone.upper()) if isinstance(zone, str) else None
    resolved = resolve(zone)
    place = place or ZONE_PLACES.get(getattr(resolved, "key", ""), getattr(resolved, "key", ""))
    local = _in_zone(at or datetime.now(UTC), resolved)
    return gettext("%(place)s time, %(abbreviation)s", place=place, abbreviation=abbreviation(local))


def zone_choices() -> list[tuple[str, str]]:
    """(IANA name, name in the page's language) of every zone a person may choose, west to east."""
    return [(zone, gettext(label)) for zone, label in ZONE_CHOICES.items()]


# English sentences (the page shows them in its language: exchange/web/errors.py page_error_text).
BAD_FORMAT = N_("Write the date and time like 2026-12-02 21:00.")
SKIPPED_TIME = N_(
    "This time does not exist here: that night the clocks jump forward an hour for daylight saving time. "
    "Choose a time after the jump (an hour later)."
)


def parse_local(text: str, zone: tzinfo | str | None = None) -> datetime:
    """A `<input type=datetime-local>` value (`2026-12-02T21:00`), read on the zone's clock, as aware UTC.

    A time the clocks skip (the spring-forward hour, e.g. 02:30 on 2027-03-14 in Toronto) does not exist and
    is refused. A time the clocks pass twice (the fall-back hour, e.g. 01:30 on 2026-11-01) is read as the
    first of the two, still on daylight time: an operation planned for "01:30" starts at the earlier moment.
    A value that carries its own offset is taken as written.
    """
    value = (text or "").strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("invalid_local_time", BAD_FORMAT) from exc
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    resolved = resolve(zone)
    as_utc = parsed.replace(tzinfo=resolved, fold=0).astimezone(UTC)
    if as_utc.astimezone(resolved).replace(tzinfo=None) != parsed:
        raise Invalid("nonexistent_local_time", SKIPPED_TIME)
    return as_utc


async def place_of_user(sessionmaker: async_sessionmaker, user: object) -> tuple[str, str]:
    """(zone, province) of a person: the zone they chose, else their organisation's province's, else their
    organisation's first facility's, else Eastern time; the province is their organisation's (or "")."""
    org_id = getattr(user, "organisation_id", None)
    province = ""
    if org_id:
        async with sessionmaker() as session:
            province = (
                await session.execute(select(Organisation.province).where(Organisation.id == org_id))
            ).scalar() or ""
            if not province:
                province = (
                    await session.execute(
                        select(Facility.province)
                        .where(Facility.organisation_id == org_id)
                        .order_by(Facility.name, Facility.id)
                        .limit(1)
                    )
                ).scalar() or ""
    province = province.upper() if province.upper() in PROVINCE_ZONES else ""
    chosen = getattr(user, "time_zone", None)
    if chosen and is_known_zone(chosen):
        return chosen, province
    return PROVINCE_ZONES.get(province, DEFAULT_ZONE), province


# Pages only: the API answers ISO-8601 UTC and never reads the request's zone.
_NO_ZONE_PREFIXES = ("/api/", "/webhooks/", "/static/", "/schema", "/healthz")


async def set_request_zone(connection: object) -> None:
    """The request's zone, for the person's own things; called with the locale before every handler."""
    scope = getattr(connection, "scope", {})
    user = scope.get("user")
    if user is None or str(scope.get("path", "")).startswith(_NO_ZONE_PREFIXES):
        set_zone(None)
        _current_province.set("")
        return
    zone, province = await place_of_user(connection.app.state.sessionmaker, user)  # type: ignore[attr-defined]
    set_zone(zone)
    _current_province.set(province)
