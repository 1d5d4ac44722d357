"""English and French, chosen from the user's setting, then Accept-Language; locale-aware formatting."""

from __future__ import annotations

import io
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency as _format_currency
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALES = ("en", "fr")
DEFAULT_LOCALE = "en"
LOCALE_COOKIE = "locale"  # the language chosen on the login page, before anyone is logged in
CATALOG_DIR = Path(__file__).resolve().parent / "locale"

_current: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)
_translations: dict[str, NullTranslations] = {}


def load_catalogs() -> None:
    """Compile the .po catalogues in memory, so no binary .mo file is kept in the repository."""
    for lang in LOCALES:
        catalog = read_catalog(lang)
        if catalog is None:
            _translations[lang] = NullTranslations()
            continue
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        _translations[lang] = Translations(buffer)


def read_catalog(lang: str) -> Catalog | None:
    """`messages.po`, plus any other `.po` file beside it: work in progress keeps its strings apart until
    `scripts/i18n-update` folds them in."""
    folder = CATALOG_DIR / lang / "LC_MESSAGES"
    main = folder / "messages.po"
    if not main.exists():
        return None
    with main.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    for extra in sorted(folder.glob("*.po")):
        if extra == main:
            continue
        with extra.open("rb") as fh:
            for message in read_po(fh, locale=lang):
                if message.id:
                    catalog[message.id] = message
    return catalog


def set_locale(lang: str) -> None:
    _current.set(lang if lang in LOCALES else DEFAULT_LOCALE)


def get_locale() -> str:
    return _current.get()


def negotiate(user_locale: str | None, accept_language: str | None) -> str:
    if user_locale in LOCALES:
        return user_locale  # type: ignore[return-value]
    if accept_language:
        best = Locale.negotiate(
            [part.split(";")[0].strip().replace("-", "_") for part in accept_language.split(",")],
            list(LOCALES),
            sep="_",
        )
        if best is not None:
            return str(best.language)
    return DEFAULT_LOCALE


def _t() -> NullTranslations:
    if not _translations:
        load_catalogs()
    return _translations.get(_current.get()) or NullTranslations()


def gettext(message: str, **variables: object) -> str:
    text = _t().gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = _t().ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


def format_ago(value: datetime | None, now: datetime) -> str:
    """`in 25 min`, `25 min ago`, `dans 25 min`, `il y a 3 h`: whole minutes, rounded toward now.

    The one relative form of every page (exchange/web/localtime.py `format_relative` is this function)."""
    if value is None:
        return ""
    seconds = (value - now).total_seconds()
    # Cached by the minute: the board asks this for every facility on every render.
    return _format_ago_minutes(int(abs(seconds) // 60), seconds > 0, get_locale())


@lru_cache(maxsize=8192)
def _format_ago_minutes(minutes: int, ahead: bool, locale: str) -> str:
    if minutes == 0:
        return gettext("now")
    span = _span(minutes)
    return gettext("in %(span)s", span=span) if ahead else gettext("%(span)s ago", span=span)


def _span(minutes: int) -> str:
    if minutes < 60:
        return gettext("%(num)d min", num=minutes)
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        if rest and hours < 10:
            return gettext("%(hours)d h %(minutes)02d min", hours=hours, minutes=rest)
        return gettext("%(num)d h", num=hours)
    return ngettext("%(num)d day", "%(num)d days", hours // 24)


def format_number(value: int) -> str:
    return format_decimal(value, locale=get_locale())


def format_money(amount_cents: int, currency: str = "CAD") -> str:
    return _format_currency(Decimal(amount_cents) / 100, currency, locale=get_locale() + "_CA")


def N_(message: str) -> str:
    """Marks a string for the catalogue where it is defined; it is translated where it is shown."""
    return message
