"""Concurrent approvals, duplicates and payments over real connections (PostgreSQL when TEST_DATABASE_URL
says so, SQLite otherwise): the fund never commits more than it holds and the books always balance."""

from __future__ import annotations

import asyncio

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.cases import create_case
from ledger.deposits import deposit
from ledger.funds import create_fund, fund_summary
from ledger.rules import DEFAULT_RULES, rules_to_document
from ledger.rulesets import approve_rule_set, save_rule_set
from tests.conftest import Network
from tests.test_ledger_support import (
    assert_books_balance,
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)


async def _small_fund(sessionmaker: async_sessionmaker, network: Network, cents: int) -> str:
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Small Fund", currency="CAD")
        await deposit(session, fund.id, amount_cents=cents, source="donation", actor_user_id=network["admin"].id)
        return fund.id


async def test_concurrent_approvals_never_overcommit(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    # 5,000.00 in the fund; twelve single-approval requests of 1,200.00 (14,400.00): at most four fit.
    fund_id = await _small_fund(sessionmaker, network, 500_000)
    # Version 2 of the rules has no monthly budgets, so every request stays at one approval.
    document = rules_to_document(DEFAULT_RULES)
    document["caps"]["category_monthly_budget_cents"] = {}
    # ... and a per-requester cap above the twelve, so that the race is between approvals only.
    document["caps"]["requester_amount_cents_30d_max"] = 2_000_000
    async with sessionmaker() as session:
        admin, second = network["admin"].user, network["approver_community"].user
        saved = await save_rule_set(
            session, fund_id, document, actor_user_id=admin.id, actor_org_id=admin.organisation_id
        )
        assert saved.version == 2
        await approve_rule_set(  # a second person, of another organisation, puts it in force
            session,
            fund_id,
            2,
            approver_user_id=second.id,
            approver_org_id=second.organisation_id,
            approver_is_admin=False,
        )
    worker = network["worker_plain"]
    # Twelve cases, more than the API opens for one worker in a day: made by the ledger directly.
    async with sessionmaker() as session:
        made = [
            await create_case(session, lead_org_id=worker.user.organisation_id, created_by_user_id=worker.id)
            for _ in range(12)
        ]
    case_codes = [case.code for case in made]
    ids = []
    for code in case_codes:
        response = await request_disbursement(
            client, worker, fund_id, code, category="travel_interprovincial", amount_cents=120_000, payee="VIA Rail"
        )
        assert response.status_code == 201, response.text
        assert (response.json()["rule"], response.json()["rule_set_version"]) == ("single_approval", 2)
        ids.append(response.json()["id"])
    for round_number in range(2):
        approvers = [network["approver"], network["approver_community"]]
        responses = await asyncio.gather(
            *(
                client.post(f"/api/v1/disbursements/{d}/approve", headers=approvers[i % 2].headers)
                for i, d in enumerate(ids)
            )
        )
        codes = [r.status_code for r in responses]
        if round_number == 0:
            assert codes.count(200) == 4, codes
            assert codes.count(409) == 8
            assert {r.json()["error"] for r in responses if r.status_code == 409} == {"insufficient_funds"}
        else:
            # The winners are approved already (409 invalid_state); the losers still do not fit.
            assert codes.count(200) == 0 and codes.count(409) == 12
        async with sessionmaker() as session:
            summary = await fund_summary(session, fund_id)
        assert summary.committed_cents == 480_000 and summary.balance_cents == 500_000
        await assert_books_balance(sessionmaker, fund_id)

    # Paying the winners concurrently (some twice) posts each once and releases the commitments.
    approved = [
        d
        for d in ids
        if (await client.get(f"/api/v1/disbursements/{d}", headers=worker.headers)).json()["status"] == "approved"
    ]
    pays = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/disbursements/{d}/pay", json={"method": "manual"}, headers=network["approver"].headers
            )
            for d in approved + approved
        )
    )
    assert sorted(r.status_code for r in pays) == [200] * 4 + [409] * 4
    async with sessionmaker() as session:
        summary = await fund_summary(session, fund_id)
    assert (summary.balance_cents, summary.committed_cents) == (20_000, 0)
    await assert_books_balance(sessionmaker, fund_id)


async def test_concurrent_fast_path_requests_never_overcommit(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    fund_id = await _small_fund(sessionmaker, network, 100_000)
    worker = network["worker"]
    code = await new_case(client, worker)
    responses = await asyncio.gather(
        *(request_disbursement(client, worker, fund_id, code, amount_cents=15_000) for _ in range(10))
    )
    codes = sorted(r.status_code for r in responses)
    # 1,000.00 holds six of 150.00; the category's monthly budget (500.00 for calling cards) escalates the
    # rest to dual approval, so at most three pass the fast path and none overcommits.
    assert all(c in (201, 409) for c in codes), codes
    fast = [r.json() for r in responses if r.status_code == 201 and r.json()["status"] == "approved"]
    async with sessionmaker() as session:
        summary = await fund_summary(session, fund_id)
    assert summary.committed_cents == 15_000 * len(fast) <= summary.balance_cents
    await assert_books_balance(sessionmaker, fund_id)


async def test_concurrent_duplicates_with_one_idempotency_key_create_one_request(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker"]
    code = await new_case(client, worker)
    headers = {"Idempotency-Key": "retry-storm-1"}
    responses = await asyncio.gather(
        *(request_disbursement(client, worker, fund_id, code, headers=headers, amount_cents=7_500) for _ in range(10))
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    async with sessionmaker() as session:
        summary = await fund_summary(session, fund_id)
    assert summary.committed_cents == 7_500
    admin = network["admin"]
    deposits = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/funds/{fund_id}/deposits",
                json={"amount_cents": 10_000, "source": "grant"},
                headers={**admin.headers, "Idempotency-Key": "grant-7"},
            )
            for _ in range(8)
        )
    )
    assert {r.status_code for r in deposits} == {201}
    assert len({r.json()["id"] for r in deposits}) == 1
    async with sessionmaker() as session:
        summary = await fund_summary(session, fund_id)
    assert summary.balance_cents == 1_010_000
    await assert_books_balance(sessionmaker, fund_id)
    audit = (await client.get(f"/api/v1/funds/{fund_id}/audit", headers=network["auditor"].headers)).json()
    assert audit["ok"] is True and audit["entries"] == 2


async def test_concurrent_deposits_keep_one_unbroken_chain(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    admin = network["admin"]
    responses = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/funds/{fund_id}/deposits",
                json={"amount_cents": 100 + i, "source": "donation"},
                headers=admin.headers,
            )
            for i in range(20)
        )
    )
    assert {r.status_code for r in responses} == {201}
    seqs = sorted(r.json()["seq"] for r in responses)
    assert seqs == list(range(2, 22))
    audit = (await client.get(f"/api/v1/funds/{fund_id}/audit", headers=network["auditor"].headers)).json()
    assert audit["ok"] is True and audit["entries"] == 21
    await assert_books_balance(sessionmaker, fund_id)
