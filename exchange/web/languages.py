"""Languages by name in the page's language ("fr" → "French" / "français"), from CLDR through Babel, so the
board's and the operation form's language menus need no catalogue entry per language."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

from beds.fit import LANGUAGES
from exchange.web.i18n import get_locale


@lru_cache(maxsize=512)
def _name(code: str, locale: str) -> str:
    try:
        name = Locale.parse(locale).languages.get(code)
    except (UnknownLocaleError, ValueError):
        name = None
    return name[:1].upper() + name[1:] if name else code.upper()


def language_name(code: str) -> str:
    """The language's name in the page's language, capitalised; its code in capitals when CLDR has no name."""
    return _name(code, get_locale())


def language_choices() -> list[tuple[str, str]]:
    """(code, name) of the languages the menus offer, English and French first, then by name."""
    first, rest = LANGUAGES[:2], sorted(LANGUAGES[2:], key=language_name)
    return [(code, language_name(code)) for code in (*first, *rest)]
