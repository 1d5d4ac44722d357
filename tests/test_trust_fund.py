"""Issue 9's money findings: a request's virtual card cannot outlive it (9), caps that cap (12), amounts
that are integers under a ceiling (13), idempotent case creation and approvals (14).

The card tests run the app for real against the fake Stripe server (tests/fakestripe); the concurrency
tests run on PostgreSQL when TEST_DATABASE_URL says so."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.cards import attach_card
from ledger.cases import create_case
from ledger.funds import fund_summary
from ledger.journal import list_entries
from ledger.models import Approval, Case, Disbursement
from ledger.rules import DEFAULT_RULES, HistoryFacts, RequestFacts, evaluate, rules_to_document
from ledger.rulesets import approve_rule_set, save_rule_set
from ledger.stripe_models import Card, CardTransaction
from tests.conftest import Network, login_page_session
from tests.fakestripe import FakeStripe
from tests.stripe_support import (
    approved_disbursement,
    fixture_billing_env,  # noqa: F401  (fixture)
    fixture_fake,  # noqa: F401  (fixture)
    fixture_http,  # noqa: F401  (fixture)
    fixture_stripe_server,  # noqa: F401  (fixture)
    issued_card,
)
from tests.test_ledger_support import (
    assert_books_balance,
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)


async def in_force(sessionmaker: async_sessionmaker, network: Network, fund_id: str, document: dict) -> int:
    """Save a rule set as the admin and have a fund approver of another organisation put it in force."""
    admin, second = network["admin"], network["approver_community"]
    async with sessionmaker() as session:
        saved = await save_rule_set(
            session, fund_id, document, actor_user_id=admin.id, actor_org_id=admin.user.organisation_id
        )
        await approve_rule_set(
            session,
            fund_id,
            saved.version,
            approver_user_id=second.id,
            approver_org_id=second.user.organisation_id,
            approver_is_admin=False,
        )
        return saved.version


async def stored(sessionmaker: async_sessionmaker, model: Any, key: str) -> Any:
    async with sessionmaker() as session:
        return await session.get(model, key, populate_existing=True)


async def card_row(sessionmaker: async_sessionmaker, disbursement_id: str) -> Card:
    async with sessionmaker() as session:
        return (await session.execute(select(Card).where(Card.disbursement_id == disbursement_id))).scalar_one()


# --- 9: cancel or reject with an open virtual card --------------------------------------------------------


async def test_cancel_cancels_the_card_at_stripe_first_and_nothing_spends_after(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id)  # calling card, 25.00, fast path
    cancelled = await http.post(f"/api/v1/disbursements/{d['id']}/cancel", headers=network["worker"].headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert fake.get(card["id"])["status"] == "canceled"
    row = await card_row(sessionmaker, d["id"])
    assert (row.status, row.closed_reason) == ("closed", "cancelled")
    late = fake.request_authorization(card["id"], 1_000, merchant_category="telecommunication_services")
    assert not late.approved
    async with sessionmaker() as session:
        assert (await fund_summary(session, fund_id)).committed_cents == 0
    await assert_books_balance(sessionmaker, fund_id)


async def test_reject_of_an_approved_request_cancels_its_card_too(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id, category="hotel")
    rejected = await http.post(
        f"/api/v1/disbursements/{d['id']}/reject",
        json={"reason": "The shelter found a bed after all."},
        headers=network["approver"].headers,
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert fake.get(card["id"])["status"] == "canceled"
    assert (await card_row(sessionmaker, d["id"])).status == "closed"


async def test_a_card_that_spent_or_holds_money_is_closed_not_cancelled(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id, category="hotel")
    auth = fake.request_authorization(card["id"], 10_000)
    assert auth.approved
    refused = await http.post(f"/api/v1/disbursements/{d['id']}/cancel", headers=network["worker"].headers)
    assert refused.status_code == 409 and refused.json()["error"] == "card_in_use", refused.text
    assert fake.get(card["id"])["status"] == "active"  # nothing was cancelled at Stripe
    stays = await stored(sessionmaker, Disbursement, d["id"])
    assert stays.status == "approved"


async def test_without_stripe_a_request_with_an_open_card_cannot_end(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    d = await approved_disbursement(client, network, fund_id)
    async with sessionmaker() as session:
        await attach_card(
            session,
            d["id"],
            stripe_card_id="ic_still_open",
            stripe_cardholder_id="ich_1",
            last4="4242",
            limit_cents=2_500,
            actor_user_id=network["worker"].id,
        )
    response = await client.post(f"/api/v1/disbursements/{d['id']}/cancel", headers=network["worker"].headers)
    assert response.status_code == 409 and response.json()["error"] == "card_open", response.text
    assert (await stored(sessionmaker, Disbursement, d["id"])).status == "approved"


async def test_a_late_capture_on_a_cancelled_request_posts_to_exceptions_and_shows_on_reconciliation(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id, category="hotel")  # 300.00
    auth = fake.request_authorization(card["id"], 12_000)
    assert auth.approved
    fake.reverse_authorization(auth.id)  # the hold is released: the card holds nothing any more
    cancelled = await http.post(f"/api/v1/disbursements/{d['id']}/cancel", headers=network["worker"].headers)
    assert cancelled.status_code == 200, cancelled.text
    assert fake.get(card["id"])["status"] == "canceled"
    # The merchant captures anyway (Stripe accepts a capture after the authorization ended: a late or force
    # capture). The fake captures only pending authorizations, so its record is put back to pending.
    fake._objects[auth.id]["status"] = "pending"
    capture = fake.capture(auth.id, 12_000)

    row = await stored(sessionmaker, Disbursement, d["id"])
    assert row.status == "cancelled"  # never paid
    async with sessionmaker() as session:
        txn = await session.get(CardTransaction, capture["id"])
        assert txn is not None and txn.exception
        posted = (await list_entries(session, fund_id))[0]
        assert {(line.account, line.side, line.amount_cents) for line in posted.lines} == {
            ("expenses:exceptions", "debit", 12_000),
            ("assets:cash", "credit", 12_000),
        }
        summary = await fund_summary(session, fund_id)
        assert summary.committed_cents == 0 and summary.balance_cents == 1_000_000 - 12_000
    await assert_books_balance(sessionmaker, fund_id)

    # What the card spent after the end still counts toward the caps: cancelling does not reset them.
    again = await http.post(
        "/api/v1/disbursements",
        json={
            "fund_id": fund_id,
            "case_code": d["case_code"],
            "category": "hotel",
            "amount_cents": 30_000,
            "currency": "CAD",
            "payee": "Hotel",
            "nights": 2,
        },
        headers=network["worker"].headers,
    )
    assert again.status_code == 201, again.text
    facts = (await stored(sessionmaker, Disbursement, again.json()["id"])).facts
    assert facts["case_amount_cents_90d"] == 12_000 and facts["requester_amount_cents_30d"] == 12_000

    report = await http.get(f"/api/v1/funds/{fund_id}/reconciliation", headers=network["auditor"].headers)
    assert report.status_code == 200, report.text
    assert [e["stripe_id"] for e in report.json()["exceptions"]] == [capture["id"]]
    assert report.json()["exceptions"][0]["journal_cents"] == -12_000
    await login_page_session(http, "auditor")  # type: ignore[arg-type]
    page = await http.get("/stripe/reconcile", params={"fund": fund_id})
    assert page.status_code == 200 and 'id="exceptions"' in page.text and capture["id"] in page.text


async def test_a_closed_card_capturing_beyond_its_limit_posts_the_excess_to_exceptions(
    http: httpx.AsyncClient, network: Network, fund_id: str, fake: FakeStripe, sessionmaker: async_sessionmaker
) -> None:
    d, card = await issued_card(http, network, fund_id, category="hotel")  # 300.00
    auth = fake.request_authorization(card["id"], 25_000)
    assert auth.approved
    closed = await http.post(f"/api/v1/disbursements/{d['id']}/card/close", headers=network["approver"].headers)
    assert closed.status_code == 200, closed.text
    capture = fake.capture(auth.id, 35_000)  # the hotel adds 100.00 to what it held
    async with sessionmaker() as session:
        posted = (await list_entries(session, fund_id))[0]
        assert {(line.account, line.side, line.amount_cents) for line in posted.lines} == {
            ("expenses:hotel", "debit", 30_000),
            ("expenses:exceptions", "debit", 5_000),
            ("assets:cash", "credit", 35_000),
        }
        txn = await session.get(CardTransaction, capture["id"])
        assert txn is not None and txn.exception
    assert (await stored(sessionmaker, Disbursement, d["id"])).status == "paid"
    await assert_books_balance(sessionmaker, fund_id)


# --- 12: caps that cap --------------------------------------------------------------------------------------


async def test_new_cases_do_not_reset_the_requester_caps(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    worker = network["worker"]
    outcomes = []
    for _ in range(4):  # 4 + 4 + 4 nights fit the requester's 14 in 30 days; 4 more do not
        case = await new_case(client, worker)
        response = await request_disbursement(
            client, worker, fund_id, case, category="hotel", amount_cents=40_000, nights=4, payee="Hotel"
        )
        assert response.status_code == 201, response.text
        outcomes.append(response.json())
    assert [o["rule"] for o in outcomes] == ["single_approval"] * 3 + ["dual_approval"]
    assert "requester_hotel_nights_cap" in outcomes[-1]["reasons"]
    assert outcomes[-1]["approvals_needed"] == 2


def test_the_requester_caps_escalate_whatever_the_case() -> None:
    request = RequestFacts("basic_needs", 20_000, None, "w", "org", True)
    assert evaluate(request, HistoryFacts(requester_amount_cents_30d=980_000), DEFAULT_RULES).rule == "fast_path"
    over = evaluate(request, HistoryFacts(requester_amount_cents_30d=980_001), DEFAULT_RULES)
    assert (over.rule, over.approvals_needed, over.reasons) == ("dual_approval", 2, ("requester_amount_cap",))
    hotel = RequestFacts("hotel", 20_000, 3, "w", "org", True)
    assert (
        "requester_hotel_nights_cap"
        in evaluate(hotel, HistoryFacts(requester_hotel_nights_30d=12), DEFAULT_RULES).reasons
    )


async def test_new_cases_per_requester_and_day_are_limited(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    worker = network["worker_plain"]
    for _ in range(10):
        await new_case(client, worker)
    refused = await client.post("/api/v1/cases", json={}, headers=worker.headers)
    assert refused.status_code == 409 and refused.json()["error"] == "case_limit", refused.text
    # Another worker is not held back by the first one's cases.
    await new_case(client, network["worker"])


async def test_approval_uses_the_rule_set_in_force_at_approval(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    case = await new_case(client, network["worker"])
    made = await request_disbursement(
        client, network["worker"], fund_id, case, category="travel_interprovincial", amount_cents=120_000
    )
    assert (made.json()["rule"], made.json()["approvals_needed"]) == ("single_approval", 1)
    stricter = rules_to_document(DEFAULT_RULES)
    stricter["single_approval"]["amount_cents_max"] = 100_000
    version = await in_force(sessionmaker, network, fund_id, stricter)
    first = await client.post(f"/api/v1/disbursements/{made.json()['id']}/approve", headers=network["approver"].headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["rule"], body["approvals_needed"]) == ("pending_approval", "dual_approval", 2)
    assert body["rule_set_version"] == version
    second = await client.post(
        f"/api/v1/disbursements/{made.json()['id']}/approve", headers=network["approver_community"].headers
    )
    assert second.status_code == 200 and second.json()["status"] == "approved", second.text


async def test_a_huge_pending_request_does_not_use_up_the_category_budget(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    # 1,900.00 of basic needs waits for two approvers: the month's 2,000.00 budget is not spent by it.
    huge = await request_disbursement(
        client,
        network["worker_plain"],
        fund_id,
        await new_case(client, network["worker_plain"]),
        category="basic_needs",
        amount_cents=190_000,
    )
    assert huge.json()["status"] == "pending_approval"
    small = await request_disbursement(
        client,
        network["worker"],
        fund_id,
        await new_case(client, network["worker"]),
        category="basic_needs",
        amount_cents=20_000,
    )
    assert (small.json()["status"], small.json()["rule"]) == ("approved", "fast_path"), small.text


async def test_the_requester_cap_holds_under_concurrent_requests(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    document = rules_to_document(DEFAULT_RULES)
    document["caps"]["requester_amount_cents_30d_max"] = 50_000
    document["caps"]["category_monthly_budget_cents"] = {}
    await in_force(sessionmaker, network, fund_id, document)
    worker = network["worker"]
    async with sessionmaker() as session:
        cases = [
            (await create_case(session, lead_org_id=worker.user.organisation_id, created_by_user_id=worker.id)).code
            for _ in range(10)
        ]
    responses = await asyncio.gather(
        *(
            request_disbursement(client, worker, fund_id, code, category="basic_needs", amount_cents=10_000)
            for code in cases
        )
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    rules = sorted(r.json()["rule"] for r in responses)
    assert rules == ["dual_approval"] * 5 + ["fast_path"] * 5


async def test_concurrent_case_creation_stops_at_the_daily_limit(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker_plain"]
    responses = await asyncio.gather(
        *(client.post("/api/v1/cases", json={}, headers=worker.headers) for _ in range(15))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 10 + [409] * 5, codes
    async with sessionmaker() as session:
        made = (await session.execute(select(func.count()).where(Case.created_by_user_id == worker.id))).scalar_one()
    assert made == 10


# --- 13: amounts ----------------------------------------------------------------------------------------------


async def test_api_amounts_are_json_integers_under_the_ceiling(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    worker = network["worker"]
    case = await new_case(client, worker)
    for amount in ("100", 100.0):
        response = await request_disbursement(client, worker, fund_id, case, amount_cents=amount)
        assert response.status_code == 422 and response.json()["error"] == "invalid_amount", (amount, response.text)
        assert "JSON integer of cents" in response.json()["detail"]
    boolean = await request_disbursement(client, worker, fund_id, case, amount_cents=True)
    assert boolean.status_code == 400 and "amount_cents" in boolean.json()["detail"], boolean.text
    huge = await request_disbursement(client, worker, fund_id, case, amount_cents=2**63 - 1)
    assert huge.status_code == 422 and huge.json()["error"] == "amount_too_large", huge.text
    deposit = await client.post(
        f"/api/v1/funds/{fund_id}/deposits",
        json={"amount_cents": "100", "source": "grant"},
        headers=network["admin"].headers,
    )
    assert deposit.status_code == 422 and deposit.json()["error"] == "invalid_amount", deposit.text
    big_deposit = await client.post(
        f"/api/v1/funds/{fund_id}/deposits",
        json={"amount_cents": 2**62, "source": "grant"},
        headers=network["admin"].headers,
    )
    assert big_deposit.status_code == 422 and big_deposit.json()["error"] == "amount_too_large"
    fine = await request_disbursement(client, worker, fund_id, case, amount_cents=2_500)
    assert fine.status_code == 201, fine.text


async def test_the_request_form_says_what_is_wrong_with_infinity_nan_and_huge_exponents(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    code = await new_case(client, network["worker"])
    await login_page_session(client, "worker")
    await client.get("/ledger/request")
    for amount in ("Infinity", "sNaN", "NaN", "1e999999", "-5", "9999999999"):
        response = await client.post(
            "/ledger/request",
            data={"fund_id": fund_id, "case_code": code, "category": "calling_card", "amount": amount},
            headers={"HX-Request": "true", "x-csrftoken": client.cookies.get("csrftoken") or ""},
        )
        # htmx swaps the form back in place (a 200), with the message beside the amount and what was typed.
        assert response.status_code == 200, (amount, response.status_code, response.text[:300])
        assert "Write the amount in dollars" in response.text, amount
        assert f'value="{amount}"' in response.text and 'aria-invalid="true"' in response.text, amount


# --- 14: idempotent cases and approvals -------------------------------------------------------------------


async def test_a_case_created_twice_with_one_key_is_one_case(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker"]
    headers = {**worker.headers, "Idempotency-Key": "case-1"}
    responses = await asyncio.gather(*(client.post("/api/v1/cases", json={}, headers=headers) for _ in range(4)))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert len({r.json()["code"] for r in responses}) == 1
    again = await client.post("/api/v1/cases", json={}, headers=headers)
    assert again.json()["code"] == responses[0].json()["code"]
    other = await client.post("/api/v1/cases", json={}, headers={**worker.headers, "Idempotency-Key": "case-2"})
    assert other.json()["code"] != again.json()["code"]
    async with sessionmaker() as session:
        made = (await session.execute(select(func.count()).where(Case.created_by_user_id == worker.id))).scalar_one()
    assert made == 2


async def test_an_approve_replayed_with_its_key_answers_the_first_result(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    case = await new_case(client, network["worker"])
    made = await request_disbursement(
        client, network["worker"], fund_id, case, category="travel_international", amount_cents=90_000
    )
    d = made.json()
    assert d["approvals_needed"] == 2
    headers = {**network["approver"].headers, "Idempotency-Key": "approve-1"}
    first = await client.post(f"/api/v1/disbursements/{d['id']}/approve", headers=headers)
    assert first.status_code == 200, first.text
    replay = await client.post(f"/api/v1/disbursements/{d['id']}/approve", headers=headers)
    assert replay.status_code == 200, replay.text
    assert replay.json() == first.json()
    # Without the key, a second approval by the same person is still refused.
    twice = await client.post(f"/api/v1/disbursements/{d['id']}/approve", headers=network["approver"].headers)
    assert twice.status_code == 409 and twice.json()["error"] == "already_approved"
    # The last approval, replayed after it completed the request, answers the approved request again.
    last_headers = {**network["approver_community"].headers, "Idempotency-Key": "approve-2"}
    last = await client.post(f"/api/v1/disbursements/{d['id']}/approve", headers=last_headers)
    assert last.status_code == 200 and last.json()["status"] == "approved", last.text
    last_again = await client.post(f"/api/v1/disbursements/{d['id']}/approve", headers=last_headers)
    assert last_again.status_code == 200 and last_again.json() == last.json()
    async with sessionmaker() as session:
        count = (await session.execute(select(func.count()).where(Approval.disbursement_id == d["id"]))).scalar_one()
        assert count == 2
        assert (await fund_summary(session, fund_id)).committed_cents == 90_000
