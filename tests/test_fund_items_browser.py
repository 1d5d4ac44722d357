"""A fund request of several items in a real browser at 390 px: rows added and removed in the form, nights only for
a hotel row, an error beside its row's field with every row kept, the path said before sending, and the request
decided as one by an approver; the same form in French."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from exchange.accounts.models import User
from ledger.models import Disbursement, DisbursementItem
from tests.conftest import LiveServer, Network
from tests.test_browser import (
    Cast,
    fixture_browser,  # noqa: F401  (fixture)
    fixture_cast,  # noqa: F401  (fixture)
    fixture_funded,  # noqa: F401  (fixture)
)
from tests.test_fund_forms_browser import PHONE, _case_of


async def test_a_request_of_three_items_sent_from_a_phone_is_decided_as_one(
    cast: Cast, live_server: LiveServer, network: Network, funded: str, sessionmaker: async_sessionmaker
) -> None:
    code = await _case_of(sessionmaker, network, "worker_plain")
    # The approver's inbox is open before the request is sent: it arrives live, with its items.
    approver = await cast.login("approver", **PHONE)
    inbox = approver.page
    await inbox.goto(live_server.url + "/ledger/inbox")
    await approver.live()
    await approver.mark()
    worker = await cast.login("worker_plain", **PHONE)
    page = worker.page
    await page.goto(live_server.url + "/ledger/request")
    await page.get_by_label("Case", exact=True).select_option(code)
    first = page.locator("#item-row-0")
    await first.get_by_label("What for").select_option("travel_interprovincial")
    await first.get_by_label("Amount (CAD)").fill("180")
    await first.get_by_label("Payee (bus line, hotel, store)").fill("Orléans Express")
    await page.get_by_role("button", name="Add an item").click()
    second = page.locator("#item-row-1")
    await expect(second.get_by_label("What for")).to_be_focused()
    await expect(second.get_by_label("Nights (hotel only)")).to_be_hidden()
    await second.get_by_label("What for").select_option("hotel")
    await expect(second.get_by_label("Nights (hotel only)")).to_be_visible()
    await expect(first.get_by_label("Nights (hotel only)")).to_be_hidden()
    await second.get_by_label("Amount (CAD)").fill("190")
    await second.get_by_label("Payee (bus line, hotel, store)").fill("Hôtel Gare")
    await page.get_by_role("button", name="Add an item").click()
    third = page.locator("#item-row-2")
    await third.get_by_label("What for").select_option("basic_needs")
    await page.get_by_role("button", name="Remove item 3").click()
    await expect(page.locator("#item-row-2")).to_have_count(0)
    await page.get_by_role("button", name="Add an item").click()
    await third.get_by_label("What for").select_option("calling_card")
    await third.get_by_label("Amount (CAD)").fill("20")
    path = page.locator("#request-path")
    # The hotel row has no nights yet: no path until the request is complete; then sending shows the error.
    await page.get_by_role("button", name="Request", exact=True).click()
    await expect(page.locator("#req-nights-1-error")).to_have_text("A hotel stay needs the number of nights.")
    await expect(first.get_by_label("Payee (bus line, hotel, store)")).to_have_value("Orléans Express")
    await expect(second.get_by_label("Amount (CAD)")).to_have_value("190")
    await expect(third.get_by_label("Amount (CAD)")).to_have_value("20")
    await expect(second.get_by_label("What for")).to_have_value("hotel")
    await second.get_by_label("Nights (hotel only)").fill("2")
    await expect(path).to_contain_text("One fund approver decides.")
    await expect(path).to_contain_text("3 items, $390.00 in total.")
    await expect(path).to_contain_text("Item 2 (Hotel): this kind of expense is not on the fast path")
    await expect(path).to_contain_text("The total ($390.00): the amount is above the fast-path limit")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the form of three items is {width} px wide on a 390 px phone"
    await worker.shot("fund-items-form-phone")
    await page.get_by_role("button", name="Request", exact=True).dblclick()
    await expect(page.get_by_text("Request sent.")).to_be_visible()
    await expect(page.locator("#request-result")).to_contain_text("3 items")
    await expect(page.locator("#item-row-1")).to_have_count(0)  # the form is one empty item again
    async with sessionmaker() as session:
        made = (await session.execute(select(Disbursement))).scalars().all()
        assert len(made) == 1 and made[0].amount_cents == 39_000, "one request of one total"
        items = (await session.execute(select(DisbursementItem).order_by(DisbursementItem.position))).scalars()
        assert [(i.category, i.amount_cents, i.nights) for i in items] == [
            ("travel_interprovincial", 18_000, None),
            ("hotel", 19_000, 2),
            ("calling_card", 2_000, None),
        ]
    request_id = made[0].id

    item = inbox.locator(f"#inbox-rows #inbox-{request_id}")
    await expect(item).to_contain_text("3 items")
    await expect(item).to_contain_text("Hôtel Gare")
    await expect(item).to_contain_text("Item 1 (Interprovincial travel): this kind of expense is not on the fast path")
    await item.get_by_text("Approve", exact=True).click()
    await item.get_by_role("button", name="Yes, approve $390.00").click()
    moved = inbox.locator(f"#inbox-approved #inbox-{request_id}")
    await expect(moved.locator(".status")).to_have_text("Approved")
    await expect(moved).to_contain_text("3 items")
    assert await approver.still_marked(), "the request arrived and moved live, without a reload"
    await approver.shot("fund-items-inbox-phone")
    width = await inbox.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the inbox is {width} px wide on a 390 px phone"
    async with sessionmaker() as session:
        decided = await session.get(Disbursement, request_id)
        assert decided is not None and (decided.status, decided.committed_cents) == ("approved", 39_000)
    cast.assert_no_errors()


async def test_the_form_of_several_items_speaks_french(
    cast: Cast, live_server: LiveServer, network: Network, funded: str, sessionmaker: async_sessionmaker
) -> None:
    code = await _case_of(sessionmaker, network, "worker_plain")
    async with sessionmaker() as session:
        await session.execute(update(User).where(User.id == network["worker_plain"].id).values(locale="fr"))
        await session.commit()
    worker = await cast.login("worker_plain", **PHONE)
    page = worker.page
    await page.goto(live_server.url + "/ledger/request")
    await page.get_by_label("Dossier", exact=True).select_option(code)
    first = page.locator("#item-row-0")
    await first.get_by_label("Pour quoi").select_option("interpretation")
    await expect(first.get_by_label("Pour quoi")).to_have_value("interpretation")
    await first.get_by_label("Montant (CAD)").fill("60")
    await page.get_by_role("button", name="Ajouter un article").click()
    second = page.locator("#item-row-1")
    await second.get_by_label("Pour quoi").select_option("hotel")
    await second.get_by_label("Montant (CAD)").fill("95")
    await page.get_by_role("button", name="Demander", exact=True).click()
    await expect(page.locator("#req-nights-1-error")).to_have_text("Un séjour à l'hôtel demande le nombre de nuits.")
    await expect(first.get_by_label("Montant (CAD)")).to_have_value("60")
    await second.get_by_label("Nuits (hôtel seulement)").fill("1")
    path = page.locator("#request-path")
    await expect(path).to_contain_text("Article 2 (Hôtel) :")
    await expect(path).to_contain_text("2 articles, 155,00\u00a0$ au total.")
    await expect(path).to_contain_text("La demande : seules les intervenantes principales utilisent la voie rapide")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the French form is {width} px wide on a 390 px phone"
    # Enter in a field sends the request (the form's first button is "Open a new case": it opens none).
    await second.get_by_label("Nuits (hôtel seulement)").press("Enter")
    await expect(page.locator("#request-result")).to_contain_text("2 articles")
    async with sessionmaker() as session:
        made = (await session.execute(select(Disbursement))).scalars().all()
        assert [(d.case_code, d.amount_cents) for d in made] == [(code, 15_500)]
    cast.assert_no_errors()
