"""Every string a person reads exists in English and French, and pages follow the user's language."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from jinja2 import Environment

from exchange.web import i18n
from tests.conftest import login_page_session

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _extracted_messages() -> set[str]:
    found: set[str] = set()
    method_map = [("exchange/**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=method_map, options_map=options, keywords=KEYWORDS
    ):
        for part in message if isinstance(message, tuple) else (message,):
            if part:
                found.add(part)
    return found


def test_every_extracted_string_has_a_french_translation() -> None:
    catalog = i18n.read_catalog("fr")
    assert catalog is not None
    translated = set()
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if all(strings):
            translated.update(ids)
    missing = sorted(_extracted_messages() - translated)
    assert not missing, f"{len(missing)} string(s) without French (run scripts/i18n-update): {missing[:15]}"


_TAG = re.compile(r"<[^>]*>", re.S)
_ENTITY = re.compile(r"&[a-z]+;|&#\d+;")


def test_templates_have_no_text_outside_gettext() -> None:
    """Text written straight into a template would reach French users in English."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        # Rebuild the template's literal text with every {{ }} and {% %} taken out, then drop the tags:
        # what is left is text a person reads.
        pieces: list[tuple[int, str]] = []
        for lineno, token, value in env.lex(path.read_text()):
            if token == "data":
                pieces.append((lineno, value))
            elif token == "variable_begin":
                pieces.append((lineno, " "))
        text = "".join(value for _, value in pieces)
        text = _ENTITY.sub(" ", _TAG.sub(" ", text))
        words = re.findall(r"[A-Za-zÀ-ÿ]{2,}", text)
        if words:
            offenders.append(f"{path.relative_to(ROOT)}: {' '.join(words)[:80]}")
    assert not offenders, "untranslatable text in templates:\n" + "\n".join(offenders)


def test_language_negotiation_prefers_user_setting_then_accept_language() -> None:
    assert i18n.negotiate("fr", "en-CA,en;q=0.9") == "fr"
    assert i18n.negotiate(None, "fr-CA,fr;q=0.9,en;q=0.5") == "fr"
    assert i18n.negotiate(None, "de-DE") == "en"
    assert i18n.negotiate(None, None) == "en"


async def test_board_speaks_french_to_a_french_browser_and_follows_the_user_setting(client, network) -> None:
    await login_page_session(client, "police")
    page = await client.get("/", headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert "Déconnexion" in page.text
    english = await client.get("/", headers={"Accept-Language": "en-CA"})
    assert "Log out" in english.text
    # The user's own setting wins over the browser's.
    switched = await client.post(
        "/settings/locale", data={"locale": "fr"}, headers={"x-csrftoken": client.cookies["csrftoken"]}
    )
    assert switched.status_code in (200, 303)
    again = await client.get("/", headers={"Accept-Language": "en-CA"})
    assert '<html lang="fr">' in again.text
