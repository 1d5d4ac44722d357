"""A fund request of several items under one case (issue 11): one total, one decision taken by the rules as they
apply to each item and to the total, one payment posted per category, and every bad item refused with its path
before anything is written. Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL (real connections)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import tempfile
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from exchange.migrations import upgrade
from ledger.deposits import deposit
from ledger.funds import create_fund, fund_summary
from ledger.journal import list_entries
from ledger.models import Disbursement, DisbursementItem
from ledger.rules import (
    DEFAULT_RULES,
    DUAL_APPROVAL,
    FAST_PATH,
    SINGLE_APPROVAL,
    HistoryFacts,
    ItemFacts,
    evaluate_items,
)
from tests.conftest import Network, Person, login_page_session
from tests.test_ledger_support import (
    assert_books_balance,
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
)

BUS_HOTEL_CARD = [
    {"category": "travel_interprovincial", "amount_cents": 18_000, "payee": "Orléans Express"},
    {"category": "hotel", "amount_cents": 19_000, "nights": 2, "payee": "Hôtel Gare", "note": "two nights"},
    {"category": "calling_card", "amount_cents": 2_000, "payee": "Bell"},
]


async def _request(client: AsyncTestClient, person: Person, fund_id: str, code: str, items: Any, **extra: Any) -> Any:
    body = {"fund_id": fund_id, "case_code": code, "currency": "CAD", "items": items, **extra}
    return await client.post("/api/v1/disbursements", json=body, headers=person.headers)


async def _counts(sessionmaker: async_sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as session:
        requests = (await session.execute(select(func.count()).select_from(Disbursement))).scalar_one()
        items = (await session.execute(select(func.count()).select_from(DisbursementItem))).scalar_one()
    return int(requests), int(items)


async def test_several_items_make_one_request_with_one_total_and_their_own_fields(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker"])
    answer = await _request(client, network["worker"], fund_id, code, BUS_HOTEL_CARD, note="bus then hotel")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["amount_cents"] == 39_000 and body["currency"] == "CAD" and body["note"] == "bus then hotel"
    assert body["category"] == "hotel", "the request's one category is its largest item's"
    assert body["nights"] == 2
    assert [(i["category"], i["amount_cents"], i["nights"], i["payee"]) for i in body["items"]] == [
        ("travel_interprovincial", 18_000, None, "Orléans Express"),
        ("hotel", 19_000, 2, "Hôtel Gare"),
        ("calling_card", 2_000, None, "Bell"),
    ]
    assert body["items"][1]["note"] == "two nights"
    # One decision for the whole request: neither the bus nor the hotel is on the fast path, nor is the total.
    assert (body["status"], body["rule"], body["approvals_needed"]) == ("pending_approval", SINGLE_APPROVAL, 1)
    assert {"reason": "category_not_fast_path", "item": 0} in body["decided_by"]
    assert {"reason": "category_not_fast_path", "item": 1} in body["decided_by"]
    assert {"reason": "amount_above_fast_path", "item": None} in body["decided_by"], "the total decided too"
    assert {"reason": "category_not_fast_path", "item": 2} not in body["decided_by"]
    again = await client.get(f"/api/v1/disbursements/{body['id']}", headers=network["approver"].headers)
    assert again.json()["items"] == body["items"]
    assert await _counts(sessionmaker) == (1, 3)
    # A request as before items existed is a request of one item, and says so.
    single = await client.post(
        "/api/v1/disbursements",
        json={
            "fund_id": fund_id,
            "case_code": code,
            "category": "calling_card",
            "amount_cents": 2_000,
            "currency": "CAD",
            "payee": "Bell",
        },
        headers=network["worker"].headers,
    )
    assert single.status_code == 201 and single.json()["rule"] == FAST_PATH
    assert single.json()["items"] == [
        {"category": "calling_card", "amount_cents": 2_000, "nights": None, "payee": "Bell", "note": ""}
    ]


async def test_a_bad_item_is_refused_with_its_path_and_nothing_is_written(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker"]
    code = await new_case(client, worker)
    card = {"category": "calling_card", "amount_cents": 2_000}
    cases: list[tuple[Any, str, str | None]] = [
        ([], "invalid_items", "items"),
        ([card] * 11, "invalid_items", "items"),
        ([card, {"category": "hotel", "amount_cents": 0, "nights": 1}], "invalid_amount", "items[1].amount_cents"),
        ([card, card, {"category": "spa", "amount_cents": 100}], "unknown_category", "items[2].category"),
        ([card, {"category": "hotel", "amount_cents": 9_000}], "nights_required", "items[1].nights"),
        ([{**card, "nights": 2}, card], "invalid_nights", "items[0].nights"),
        ([card, {"category": "other", "amount_cents": "100"}], "invalid_amount", "items[1].amount_cents"),
        ([card, {"category": "other", "amount_cents": 100.0}], "invalid_amount", "items[1].amount_cents"),
        ([card, {"category": "other", "amount_cents": 100_000_000_00}], "amount_too_large", "items[1].amount_cents"),
    ]
    for items, error, path in cases:
        answer = await _request(client, worker, fund_id, code, items)
        assert answer.status_code == 422, (items, answer.text)
        assert answer.json()["error"] == error, answer.text
        assert answer.json()["path"] == path, answer.text
    both = await _request(client, worker, fund_id, code, [card], category="other", amount_cents=100)
    assert both.status_code == 422 and both.json()["error"] == "items_and_item"
    personal = await _request(client, worker, fund_id, code, [card, {**card, "note": "call 514-555-0199"}])
    assert personal.status_code == 422 and personal.json()["field"] == "items[1].note"
    unknown_field = await _request(client, worker, fund_id, code, [{**card, "colour": "red"}])
    assert unknown_field.status_code == 400
    assert await _counts(sessionmaker) == (0, 0)


def test_the_strictest_path_of_any_item_or_the_total_decides() -> None:
    def decide(*items: ItemFacts, lead: bool = True, history: HistoryFacts | None = None) -> Any:
        return evaluate_items(items, history or HistoryFacts(), DEFAULT_RULES, requester_is_lead_worker=lead)

    small = decide(ItemFacts("calling_card", 2_000), ItemFacts("travel_local", 3_000))
    assert (small.rule, small.outcome) == (FAST_PATH, "approved")
    # Each item fits the fast path; their total does not.
    total = decide(ItemFacts("calling_card", 15_000), ItemFacts("basic_needs", 15_000))
    assert total.rule == SINGLE_APPROVAL and [(b.reason, b.item) for b in total.decided_by] == [
        ("amount_above_fast_path", None)
    ]
    # One item needs two approvers: the whole request does, and the item is named.
    abroad = decide(ItemFacts("calling_card", 2_000), ItemFacts("travel_international", 60_000))
    assert abroad.rule == DUAL_APPROVAL and abroad.needs_other_org
    assert [(b.reason, b.item) for b in abroad.decided_by] == [("category_requires_dual_approval", 1)]
    # Three items each within one approver's limit, above it together.
    big = decide(*(ItemFacts("other", 60_000) for _ in range(3)))
    assert big.rule == DUAL_APPROVAL
    assert [(b.reason, b.item) for b in big.decided_by] == [("amount_above_single_approval", None)]
    # Hotel nights add up across items against the case's cap; a budget is per category of the items.
    nights = decide(ItemFacts("hotel", 40_000, 4), ItemFacts("hotel", 40_000, 4))
    assert ("hotel_nights_cap", None) in [(b.reason, b.item) for b in nights.decided_by]
    budget = decide(
        ItemFacts("calling_card", 2_000),
        ItemFacts("interpretation", 5_000),
        history=HistoryFacts(category_month_by_category={"calling_card": 49_000, "interpretation": 0}),
    )
    assert [(b.reason, b.item) for b in budget.decided_by] == [("category_monthly_budget", 0)]
    # One item is the request itself: nothing is said about "item 0".
    one = decide(ItemFacts("other", 2_000))
    assert {b.item for b in one.decided_by} == {None}


async def test_an_item_or_the_total_decides_over_the_api_and_one_approval_decides_every_item(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker"]
    code = await new_case(client, worker)
    fast = await _request(
        client,
        worker,
        fund_id,
        code,
        [{"category": "calling_card", "amount_cents": 2_000}, {"category": "travel_local", "amount_cents": 3_000}],
    )
    assert fast.json()["status"] == "approved" and fast.json()["committed_cents"] == 5_000
    abroad = await _request(
        client,
        worker,
        fund_id,
        code,
        [
            {"category": "calling_card", "amount_cents": 2_000},
            {"category": "travel_international", "amount_cents": 60_000},
        ],
    )
    body = abroad.json()
    assert (body["rule"], body["approvals_needed"], body["needs_other_org"]) == (DUAL_APPROVAL, 2, True)
    assert body["decided_by"] == [{"reason": "category_requires_dual_approval", "item": 1}]
    first = await client.post(f"/api/v1/disbursements/{body['id']}/approve", headers=network["approver"].headers)
    assert first.json()["status"] == "pending_approval" and first.json()["approvals_remaining"] == 1
    second = await client.post(
        f"/api/v1/disbursements/{body['id']}/approve", headers=network["approver_community"].headers
    )
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "approved" and second.json()["committed_cents"] == 62_000
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).committed_cents == 67_000


async def test_paying_posts_one_balanced_entry_per_category_and_the_chain_verifies(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker"]
    code = await new_case(client, worker)
    items = [*BUS_HOTEL_CARD, {"category": "hotel", "amount_cents": 9_500, "nights": 1, "payee": "Motel"}]
    made = (await _request(client, worker, fund_id, code, items)).json()
    approved = await client.post(f"/api/v1/disbursements/{made['id']}/approve", headers=network["approver"].headers)
    assert approved.json()["status"] == "approved" and approved.json()["committed_cents"] == 48_500
    paid = await client.post(
        f"/api/v1/disbursements/{made['id']}/pay",
        json={"method": "manual", "reference": "cheque 12"},
        headers=network["approver"].headers,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["paid_cents"] == 48_500
    async with sessionmaker() as session:
        entries = await list_entries(session, fund_id)
        summary = await fund_summary(session, fund_id)
    payment = next(v for v in entries if v.entry.disbursement_id == made["id"])
    debits = {line.account: line.amount_cents for line in payment.lines if line.side == "debit"}
    credits = {line.account: line.amount_cents for line in payment.lines if line.side == "credit"}
    assert debits == {
        "expenses:travel_interprovincial": 18_000,
        "expenses:hotel": 28_500,
        "expenses:calling_card": 2_000,
    }
    assert credits == {"assets:cash": 48_500}
    assert summary.committed_cents == 0 and summary.balance_cents == 1_000_000 - 48_500
    await assert_books_balance(sessionmaker, fund_id)
    audit = await client.get(f"/api/v1/funds/{fund_id}/audit", headers=network["auditor"].headers)
    assert audit.json()["ok"] is True, audit.text


async def test_a_partial_payment_splits_to_the_cent_across_categories(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker_plain"]
    code = await new_case(client, worker)
    items = [
        {"category": "calling_card", "amount_cents": 1_000},
        {"category": "basic_needs", "amount_cents": 1_000},
        {"category": "travel_local", "amount_cents": 1_000},
    ]
    made = (await _request(client, worker, fund_id, code, items)).json()
    await client.post(f"/api/v1/disbursements/{made['id']}/approve", headers=network["approver"].headers)
    paid = await client.post(
        f"/api/v1/disbursements/{made['id']}/pay",
        json={"method": "manual", "amount_cents": 1_000},
        headers=network["approver"].headers,
    )
    assert paid.json()["paid_cents"] == 1_000
    async with sessionmaker() as session:
        entries = await list_entries(session, fund_id)
    payment = next(v for v in entries if v.entry.disbursement_id == made["id"])
    debits = sorted(line.amount_cents for line in payment.lines if line.side == "debit")
    assert debits == [333, 333, 334] and sum(debits) == 1_000
    await assert_books_balance(sessionmaker, fund_id)


async def test_a_card_is_refused_for_a_request_of_several_kinds(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    code = await new_case(client, network["worker"])
    made = (await _request(client, network["worker"], fund_id, code, BUS_HOTEL_CARD)).json()
    await client.post(f"/api/v1/disbursements/{made['id']}/approve", headers=network["approver"].headers)
    card = await client.post(
        f"/api/v1/disbursements/{made['id']}/pay", json={"method": "stripe_card"}, headers=network["approver"].headers
    )
    # Without Stripe the card is not set up at all; either way no card is made for mixed kinds.
    assert card.status_code in (409, 422) and card.json()["error"] in (
        "stripe_not_configured",
        "no_card_for_several_categories",
    )


async def test_concurrent_item_requests_never_commit_more_than_the_fund_holds(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    # 300.00 in the fund; four fast-path requests of two items (200.00 each): one fits.
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Small Fund", currency="CAD")
        await deposit(session, fund.id, amount_cents=30_000, source="donation", actor_user_id=network["admin"].id)
        fund_id = fund.id
    worker = network["worker"]
    codes = [await new_case(client, worker) for _ in range(2)]
    items = [{"category": "calling_card", "amount_cents": 10_000}, {"category": "travel_local", "amount_cents": 10_000}]
    answers = await asyncio.gather(*(_request(client, worker, fund_id, codes[i % 2], items) for i in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["error"] for a in answers if a.status_code == 409} == {"insufficient_funds"}
    assert await _counts(sessionmaker) == (1, 2), "a refused request leaves no item behind"
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).committed_cents == 20_000
    await assert_books_balance(sessionmaker, fund_id)
    # The same request sent four times at once with one Idempotency-Key is one request of two items.
    await new_case(client, worker)
    headers = {**worker.headers, "Idempotency-Key": "items-once"}
    small = [{"category": "calling_card", "amount_cents": 1_000}, {"category": "travel_local", "amount_cents": 1_000}]
    body = {"fund_id": fund_id, "case_code": codes[0], "currency": "CAD", "items": small}
    same = await asyncio.gather(*(client.post("/api/v1/disbursements", json=body, headers=headers) for _ in range(4)))
    assert {a.status_code for a in same} <= {200, 201}, [a.text for a in same]
    assert len({a.json()["id"] for a in same}) == 1
    assert await _counts(sessionmaker) == (2, 4)
    other = {**body, "items": small[:1]}
    reused = await client.post("/api/v1/disbursements", json=other, headers=headers)
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"


async def test_the_status_page_inbox_and_journal_show_the_items(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    code = await new_case(client, network["worker"])
    made = (await _request(client, network["worker"], fund_id, code, BUS_HOTEL_CARD)).json()
    await login_page_session(client, "approver")
    inbox = (await client.get("/ledger/inbox")).text
    item = inbox.split(f'id="inbox-{made["id"]}"')[1].split("</article>")[0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item))
    assert "$390.00" in text and "3 items" in text
    assert "Interprovincial travel $180.00" in text and "Hotel $190.00" in text and "2 nights" in text
    assert "Calling card $20.00" in text and "Hôtel Gare" in text
    assert "Item 1 (Interprovincial travel): this kind of expense is not on the fast path" in text
    assert "The total ($390.00): the amount is above the fast-path limit" in text
    assert "Yes, approve $390.00" in text
    status = (await client.get(f"/ledger/requests/{made['id']}")).text
    assert "Orléans Express" in status and "Calling card" in status
    await client.post(
        f"/ledger/requests/{made['id']}/approve", headers={"x-csrftoken": client.cookies.get("csrftoken") or ""}
    )
    await client.post(
        f"/ledger/requests/{made['id']}/pay",
        data={"amount": "", "reference": ""},
        headers={"x-csrftoken": client.cookies.get("csrftoken") or ""},
    )
    await client.post("/logout", headers={"x-csrftoken": client.cookies.get("csrftoken") or ""})
    await login_page_session(client, "auditor")
    journal = (await client.get(f"/ledger/journal?fund={fund_id}")).text
    assert "Interprovincial travel" in journal and "Calling card" in journal


def _csrf(client: AsyncTestClient, htmx: bool = True) -> dict[str, str]:
    headers = {"x-csrftoken": client.cookies.get("csrftoken") or ""}
    return {**headers, "HX-Request": "true"} if htmx else headers


async def test_the_form_adds_and_removes_items_without_javascript_and_keeps_every_row_on_an_error(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker"])
    await login_page_session(client, "worker")
    page = (await client.get("/ledger/request")).text
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page).group(1)  # type: ignore[union-attr]
    assert "Add an item" in page and 'name="category-1"' not in page
    typed = {"fund_id": fund_id, "case_code": code, "idempotency_key": key, "category": "travel_interprovincial"}
    typed.update(amount="180", payee="Orléans Express")
    added = await client.post("/ledger/request", data={**typed, "add_item": "1"}, headers=_csrf(client, htmx=False))
    assert added.status_code == 200 and 'name="category-1"' in added.text and "Remove item 2" in added.text
    assert 'value="Orléans Express"' in added.text and f'value="{key}"' in added.text
    rows = {
        **typed,
        **{"category-1": "hotel", "amount-1": "190", "nights-1": "", "payee-1": "Hôtel Gare"},
        **{"category-2": "calling_card", "amount-2": "0", "payee-2": "Bell", "note-2": "for the family"},
    }
    wrong = await client.post("/ledger/request", data=rows, headers=_csrf(client))
    assert 'id="req-nights-1-error">A hotel stay needs the number of nights.' in wrong.text
    assert 'id="req-amount-2-error">The amount must be more than $0.' in wrong.text
    assert 'id="req-amount-error"' not in wrong.text, "the first item is right"
    for value in ("Orléans Express", "Hôtel Gare", "Bell", "for the family", "190", "180"):
        assert f'value="{value}"' in wrong.text, value
    assert '<option value="hotel" selected>' in wrong.text and '<option value="calling_card" selected>' in wrong.text
    phone = {**rows, "nights-1": "2", "amount-2": "20", "payee-1": "call 514-555-0199"}
    refused = await client.post("/ledger/request", data=phone, headers=_csrf(client))
    assert 'id="req-payee-1-error">' in refused.text and 'value="call 514-555-0199"' in refused.text
    removed = await client.post("/ledger/request", data={**rows, "remove_item": "2"}, headers=_csrf(client))
    assert 'name="category-2"' not in removed.text and 'value="Hôtel Gare"' in removed.text
    assert await _counts(sessionmaker) == (0, 0)
    # The path says which item or the total decides, before sending.
    good = {**rows, "nights-1": "2", "amount-2": "20"}
    path = await client.post("/ledger/request/path", data=good, headers=_csrf(client))
    flat = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.text))
    assert "One fund approver decides." in flat and "3 items, $390.00 in total." in flat
    assert "Item 2 (Hotel): this kind of expense is not on the fast path" in flat
    assert "The total ($390.00): the amount is above the fast-path limit" in flat
    sent = await client.post("/ledger/request", data=good, headers=_csrf(client))
    assert "Request sent." in sent.text and "3 items" in sent.text
    assert await _counts(sessionmaker) == (1, 3)
    again = await client.post("/ledger/request", data=good, headers=_csrf(client))
    assert await _counts(sessionmaker) == (1, 3), "the same form sent twice makes one request"
    assert "Request sent." in again.text
    # In French, the same error and the path are French.
    await client.post("/settings/locale", data={"locale": "fr"}, headers=_csrf(client, htmx=False))
    french = await client.post("/ledger/request", data={**rows, "idempotency_key": "fr-1"}, headers=_csrf(client))
    assert "Un séjour à l'hôtel demande le nombre de nuits." in french.text.replace("&#39;", "'")
    assert "Ajouter un article" in french.text and "Interprétation" in french.text
    path_fr = await client.post("/ledger/request/path", data=good, headers=_csrf(client))
    assert "Article 2 (Hôtel)" in path_fr.text and "Le total" in path_fr.text


async def test_interpretation_is_a_category_with_its_own_account(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker"])
    items = [{"category": "interpretation", "amount_cents": 6_000, "payee": "Interprètes"}]
    made = (await _request(client, network["worker"], fund_id, code, items)).json()
    assert made["category"] == "interpretation" and made["rule"] == SINGLE_APPROVAL
    await client.post(f"/api/v1/disbursements/{made['id']}/approve", headers=network["approver"].headers)
    paid = await client.post(
        f"/api/v1/disbursements/{made['id']}/pay", json={"method": "manual"}, headers=network["approver"].headers
    )
    assert paid.json()["status"] == "paid"
    async with sessionmaker() as session:
        entries = await list_entries(session, fund_id)
    lines = next(v for v in entries if v.entry.disbursement_id == made["id"]).lines
    assert {line.account for line in lines} == {"expenses:interpretation", "assets:cash"}
    await assert_books_balance(sessionmaker, fund_id)


def test_the_migration_makes_each_earlier_request_a_request_of_one_item() -> None:
    path = f"{tempfile.mkdtemp(prefix='refuge-items-')}/m.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "c7b2e3f40802")
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO ledger_fund (id, name, currency, entry_count, head_hash, audit_count, audit_head_hash, "
        "created_at) VALUES ('f1', 'Fund', 'CAD', 0, '', 0, '', '2026-01-01 00:00:00')"
    )
    db.execute(
        "INSERT INTO ledger_case (id, code, lead_org_id, created_by_user_id, created_at) "
        "VALUES ('c1', 'C-AAAA-AA', 'o1', 'u1', '2026-01-01 00:00:00')"
    )
    db.execute(
        "INSERT INTO ledger_disbursement (id, fund_id, case_id, case_code, requester_id, requester_org_id, category, "
        "amount_cents, currency, payee, nights, note, status, rule, approvals_needed, needs_other_org, reasons, facts, "
        "rule_set_id, rule_set_version, committed_cents, paid_cents, rejection_reason, created_at) VALUES "
        "('d1', 'f1', 'c1', 'C-AAAA-AA', 'u1', 'o1', 'hotel', 19000, 'CAD', 'Hôtel Gare', 2, 'note', "
        "'pending_approval', 'single_approval', 1, 0, '[]', '{}', 'r1', 1, 0, 0, '', '2026-01-01 00:00:00')"
    )
    db.commit()
    db.close()
    upgrade(url)
    db = sqlite3.connect(path)
    items = db.execute(
        "SELECT disbursement_id, position, category, amount_cents, nights, payee FROM ledger_disbursement_item"
    ).fetchall()
    assert items == [("d1", 0, "hotel", 19_000, 2, "Hôtel Gare")]
    assert db.execute("SELECT decided_by FROM ledger_disbursement").fetchone() == ("[]",)
    accounts = db.execute("SELECT code FROM ledger_account WHERE fund_id = 'f1'").fetchall()
    assert accounts == [("expenses:interpretation",)], "every fund gets the new category's account"
    db.close()


async def test_a_category_budget_counts_the_items_of_that_category_in_other_requests(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    worker = network["worker"]
    code = await new_case(client, worker)
    # The largest item is local travel; the calling card inside it still counts toward the calling-card budget.
    first = [{"category": "travel_local", "amount_cents": 45_000}, {"category": "calling_card", "amount_cents": 40_000}]
    made = (await _request(client, worker, fund_id, code, first)).json()
    assert made["category"] == "travel_local"
    await client.post(f"/api/v1/disbursements/{made['id']}/approve", headers=network["approver"].headers)
    small = [{"category": "calling_card", "amount_cents": 15_000}, {"category": "travel_local", "amount_cents": 1_000}]
    over = (await _request(client, worker, fund_id, code, small)).json()
    assert over["rule"] == DUAL_APPROVAL and over["decided_by"] == [{"reason": "category_monthly_budget", "item": 0}]
    await client.post(f"/api/v1/disbursements/{over['id']}/cancel", headers=worker.headers)
    # Paid at half, the card's share of what was paid is what counts: 200.00, and 150.00 more fits the month.
    paid = await client.post(
        f"/api/v1/disbursements/{made['id']}/pay",
        json={"method": "manual", "amount_cents": 42_500},
        headers=network["approver"].headers,
    )
    assert paid.json()["paid_cents"] == 42_500
    fits = (await _request(client, worker, fund_id, code, small)).json()
    assert fits["rule"] == FAST_PATH, fits
