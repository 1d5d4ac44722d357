"""Shared fixtures and helpers of the ledger tests (imported by the tests/test_ledger_*.py modules)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.deposits import deposit
from ledger.funds import create_fund, fund_summary
from ledger.verify import check_books
from tests.conftest import Network, Person


@pytest.fixture(name="fund_id")
async def fixture_fund_id(sessionmaker: async_sessionmaker, network: Network) -> str:
    """A CAD fund holding 10,000.00, deposited by the admin."""
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Emergency Fund", currency="CAD")
        await deposit(session, fund.id, amount_cents=1_000_000, source="grant", actor_user_id=network["admin"].id)
        return fund.id


async def new_case(client: AsyncTestClient, person: Person) -> str:
    response = await client.post("/api/v1/cases", json={}, headers=person.headers)
    assert response.status_code == 201, response.text
    return response.json()["code"]


def disbursement_body(fund_id: str, case_code: str, /, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "fund_id": fund_id,
        "case_code": case_code,
        "category": "calling_card",
        "amount_cents": 2_500,
        "currency": "CAD",
        "payee": "Bell prepaid",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def request_disbursement(
    client: AsyncTestClient,
    person: Person,
    fund_id: str,
    case_code: str,
    /,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> Any:
    return await client.post(
        "/api/v1/disbursements",
        json=disbursement_body(fund_id, case_code, **kw),
        headers={**person.headers, **(headers or {})},
    )


async def assert_books_balance(sessionmaker: async_sessionmaker, fund_id: str) -> None:
    async with sessionmaker() as session:
        books = await check_books(session, fund_id)
        summary = await fund_summary(session, fund_id)
    assert books.debits_cents == books.credits_cents
    assert books.mismatched_accounts == ()
    assert 0 <= summary.committed_cents <= summary.balance_cents
