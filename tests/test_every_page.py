"""Every page, as every person who may open it, in English and French: it fits a 390 px phone, has no serious
accessibility fault (axe-core), and shows no raw code (`travel_local`, `expenses:hotel`, `shelter_staff`).

The pages are the app's own GET routes (not the API), with ids from the world of tests/test_access_matrix.py (an
operation, holds, an agreement, a fund, a disbursement). A page a person may not open (403, 404, the login page)
is not theirs to check. Failures are collected for every page before the test fails, so one run lists them all.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import pytest
from axe_playwright_python.async_playwright import Axe
from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.async_api import Browser, BrowserContext
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.holds_models import AgreementScope, HoldStatus
from beds.models import FacilityKind, Profile, SecurityLevel
from exchange.accounts.models import OrgKind, Role
from exchange.web import labels
from ledger.funds import fund_accounts
from ledger.models import Category, DepositSource, Status
from tests.conftest import PASSWORD, PEOPLE, LiveServer, Network
from tests.test_access_matrix import build_world, fixture_network_with_partner, route_table  # noqa: F401  (fixture)
from tests.test_browser import EXPECT_TIMEOUT_MS, fixture_browser  # noqa: F401  (the module's browser)

LOGIN_TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}
LOCALES = {"en": "en-CA", "fr": "fr-CA"}
# Not pages: files, the browser's own request, the sign-in form itself (visited logged out below).
NOT_PAGES = {"/favicon.ico", "/ledger/journal.csv", "/login", "/admin/directory/package.zip"}
PUBLIC_PAGES = ["/login", "/donate/{fund_id}", "/no-such-page"]
SERIOUS = {"serious", "critical"}
# The WCAG 2.1 A and AA rules (axe-core's best-practice rules are advice, not faults).
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


def page_paths(app: Litestar) -> list[str]:
    """Every GET route that answers a page: not the API, the webhooks, the schema or static files."""
    http, _sockets = route_table(app)
    return sorted(
        path
        for method, path in http
        if method == "GET"
        and not path.startswith(("/api/", "/webhooks/", "/schema", "/static"))
        and path not in NOT_PAGES
    )


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


# --- raw codes ----------------------------------------------------------------------------------------------


def _snake(values: object) -> set[str]:
    return {str(v) for v in values if "_" in str(v)}  # type: ignore[attr-defined]


def raw_codes() -> set[str]:
    """The codes that must never reach a person: snake_case values of the domains' enums and labels, the ledger's
    account codes (`expenses:hotel`) and the reasons recorded on pool changes (`hold_released`)."""
    codes: set[str] = set()
    for enum in (Role, OrgKind, FacilityKind, Profile, SecurityLevel, HoldStatus, AgreementScope):
        codes |= _snake(e.value for e in enum)
    for enum in (Category, Status, DepositSource):
        codes |= _snake(e.value for e in enum)
    for table in (labels.KIND_LABELS, labels.PROFILE_LABELS, labels.CRITERIA_LABELS, labels.SECURITY_LABELS):
        codes |= _snake(table)
    codes |= {code for code, _kind in fund_accounts()}
    codes |= {f"hold_{status.value}" for status in HoldStatus} | {"surge_added", "surge_expired", "adjust/seed"}
    return codes


class _Text(HTMLParser):
    """The text a person reads: text nodes outside script, style, template and hidden elements, and outside the
    rules' advanced JSON view (a textarea, `pre`, `code`: code shown as code, on purpose)."""

    SKIP = {"script", "style", "template", "noscript", "textarea", "pre", "code"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.stack: list[bool] = []  # per open element: is its content hidden?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        hidden = tag in self.SKIP or any(name == "hidden" for name, _value in attrs)
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def codes_in(text: str, codes: set[str]) -> list[str]:
    return sorted(code for code in codes if re.search(rf"(?<![\w:/.-]){re.escape(code)}(?![\w:/-])", text))


@pytest.fixture(name="world_ids")
async def fixture_world_ids(client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker) -> dict:
    world = await build_world(client, network, sessionmaker)
    client.cookies.clear()
    return world.ids


async def _log_in(client: AsyncTestClient, username: str, language: str) -> None:
    client.cookies.clear()
    await client.get("/login", headers={"Accept-Language": language})
    token = client.cookies["csrftoken"]
    response = await client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "next": "/", "_csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, (username, response.status_code)


@pytest.mark.parametrize("lang", sorted(LOCALES))
async def test_no_page_shows_a_raw_code(app: Litestar, client: AsyncTestClient, world_ids: dict, lang: str) -> None:
    codes = raw_codes()
    assert {"travel_local", "expenses:hotel", "shelter_staff", "hold_released"} <= codes
    language = LOCALES[lang]
    found: list[str] = []
    visited = 0
    for username in PEOPLE:
        await _log_in(client, username, language)
        for template in page_paths(app):
            path = fill(template, world_ids)
            response = await client.get(path, headers={"Accept-Language": language}, follow_redirects=False)
            if response.status_code in (302, 303, 401, 403, 404) or "text/html" not in response.headers.get(
                "content-type", ""
            ):
                continue
            if response.status_code >= 500:
                found.append(f"{lang} {username} {template}: server error {response.status_code}")
                continue
            visited += 1
            shown = codes_in(visible_text(response.text), codes)
            if shown:
                found.append(f"{lang} {username} {template}: {shown}")
    client.cookies.clear()
    for template in PUBLIC_PAGES:
        response = await client.get(fill(template, world_ids), headers={"Accept-Language": language})
        shown = codes_in(visible_text(response.text), codes)
        if shown:
            found.append(f"{lang} anonymous {template}: {shown}")
    assert visited > 40, visited
    assert not found, "raw codes shown to people:\n" + "\n".join(found)


# --- in a phone's browser: width and axe-core ----------------------------------------------------------------

# The widest elements past the screen's edge, to say what to fix (evaluated by the devtools protocol, which the
# page's CSP does not govern).
OVERFLOW_PROBE = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0) {
      const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        (el.classList.length ? "." + [...el.classList].join(".") : "");
      out.push(name + " " + Math.round(box.right));
    }
  }
  return out.slice(0, 4);
}"""


@pytest.fixture(name="phone")
async def fixture_phone(browser: Browser) -> AsyncIterator[dict[str, BrowserContext]]:
    contexts: dict[str, BrowserContext] = {}
    yield contexts
    for context in contexts.values():
        await context.close()


async def _phone_context(browser: Browser, server: LiveServer, username: str | None, lang: str) -> BrowserContext:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale=LOCALES[lang])
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    if username is not None:
        page = await context.new_page()
        await page.goto(server.url + "/login")
        await page.locator("input[name=username]").fill(username)
        await page.locator("input[name=password]").fill(PASSWORD)
        # Logging in checks a password hash (argon2): slow on a busy machine, so a longer wait than other steps.
        await page.locator("form[action='/login'] button[type=submit]").click(timeout=LOGIN_TIMEOUT_MS)
        await page.wait_for_url(lambda url: "/login" not in url, timeout=LOGIN_TIMEOUT_MS)
        await page.close()
    return context


@pytest.mark.parametrize("lang", sorted(LOCALES))
async def test_every_page_fits_a_phone_and_passes_axe(
    app: Litestar, browser: Browser, live_server: LiveServer, world_ids: dict, phone: dict, lang: str
) -> None:
    axe = Axe()
    axed: set[str] = set()
    too_wide: list[str] = []
    faults: list[str] = []
    visited = 0
    people: list[str | None] = [*PEOPLE, None]
    for username in people:
        context = phone[str(username)] = await _phone_context(browser, live_server, username, lang)
        page = await context.new_page()
        templates = PUBLIC_PAGES if username is None else page_paths(app)
        for template in templates:
            response = await page.goto(live_server.url + fill(template, world_ids))
            assert response is not None
            if username is not None and (response.status in (401, 403, 404) or "/login" in page.url):
                continue  # not a page this person may open
            where = f"{lang} {username or 'anonymous'} {template}"
            if response.status >= 500:
                faults.append(f"{where}: server error {response.status}")
                continue
            if "<html" not in (await response.text())[:300].lower():
                continue  # a fragment a page loads into itself (htmx), checked as part of that page
            visited += 1
            width = await page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                too_wide.append(f"{where}: {width}px {await page.evaluate(OVERFLOW_PROBE)}")
            # axe-core once per page and language, as the first person who may open it (the width for everyone):
            # running it for each of the twelve people would take the run past ten minutes on a shared machine.
            if template in axed:
                continue
            axed.add(template)
            results = await axe.run(page, options=AXE_OPTIONS)
            for violation in results.response["violations"]:
                if violation.get("impact") in SERIOUS:
                    targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
                    faults.append(f"{where}: {violation['id']} ({violation['impact']}) {targets}")
        await page.close()
    assert visited > 40, visited
    report = []
    if too_wide:
        report.append("wider than 390 px:\n" + "\n".join(too_wide))
    if faults:
        report.append("axe-core serious or critical:\n" + "\n".join(faults))
    assert not report, "\n\n".join(report)
