"""English and French, chosen from the user's setting, then Accept-Language; locale-aware formatting."""

from __future__ import annotations

import io
from contextvars import ContextVar
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime as _format_datetime
from babel.dates import format_timedelta as _format_timedelta
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


def format_datetime(value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return _format_datetime(value, format=fmt, locale=get_locale(), tzinfo=None)


def format_ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return ""
    delta: timedelta = value - now
    # Rounded to the minute and cached: the board asks this for every facility on every render.
    return _format_ago_minutes(int(delta.total_seconds() // 60), get_locale())


@lru_cache(maxsize=8192)
def _format_ago_minutes(minutes: int, locale: str) -> str:
    return _format_timedelta(timedelta(minutes=minutes), add_direction=True, locale=locale, threshold=1.0)


def format_number(value: int) -> str:
    return format_decimal(value, locale=get_locale())


def format_money(amount_cents: int, currency: str = "CAD") -> str:
    return _format_currency(Decimal(amount_cents) / 100, currency, locale=get_locale() + "_CA")


def N_(message: str) -> str:
    """Marks a string for the catalogue where it is defined; it is translated where it is shown."""
    return message
