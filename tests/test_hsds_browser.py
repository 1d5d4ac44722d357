"""The network admin's directory import in a real browser: a dry run, then the import, with the working sign shown
while the package is sent and imported (issue 14)."""

from __future__ import annotations

import asyncio
import json

from playwright.async_api import Route, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.models import Facility
from tests.conftest import LiveServer, Network
from tests.test_browser import Cast, fixture_browser, fixture_cast  # noqa: F401  (the module's browser and cast)
from tests.test_hsds_import import shelter_example


async def _facilities(sessionmaker: async_sessionmaker) -> int:
    async with sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Facility))).scalar_one()


async def test_admin_imports_a_directory_from_the_page(
    cast: Cast, live_server: LiveServer, network: Network, sessionmaker: async_sessionmaker
) -> None:
    admin = await cast.login("admin", viewport={"width": 390, "height": 844})
    page = admin.page
    await page.goto(live_server.url + "/admin/directory")
    package = {"name": "shelter.json", "mimeType": "application/json", "buffer": json.dumps(shelter_example()).encode()}
    await page.get_by_label("Package file").set_input_files(package)

    # The request waits until the sign has been seen: the sign is what a person sees while a big file goes up.
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await page.route("**/admin/directory/import", hold)
    await page.get_by_role("button", name="Import").click()
    await expect(page.locator("#directory-working")).to_be_visible()
    await expect(page.get_by_role("button", name="Import")).to_be_disabled()
    release.set()
    report = page.locator("#directory-report")
    await expect(report).to_contain_text("Dry run: nothing was written")
    await expect(report).to_contain_text("Women's Shelter Ottawa")
    await expect(page.locator("#directory-working")).to_be_hidden()
    assert await _facilities(sessionmaker) == 2
    await admin.shot("directory_1_dry_run")

    await page.get_by_label("Dry run: show what would change, write nothing").uncheck()
    await page.get_by_role("button", name="Import").click()
    await expect(report).to_contain_text("Imported")
    await expect(report).to_contain_text("Facilities: 1 new, 0 changed, 0 unchanged.")
    assert await _facilities(sessionmaker) == 3
    await admin.shot("directory_2_imported")
    cast.assert_no_errors()
