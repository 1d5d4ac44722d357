"""Tamper evidence: an amount or memo changed straight in the database breaks the chain at that entry."""

from __future__ import annotations

from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.verify import verify_fund
from tests.conftest import Network
from tests.test_ledger_support import (
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)


async def _history(client: AsyncTestClient, network: Network, fund_id: str) -> None:
    admin = network["admin"]
    for amount in (20_000, 30_000, 40_000):
        response = await client.post(
            f"/api/v1/funds/{fund_id}/deposits",
            json={"amount_cents": amount, "source": "donation"},
            headers=admin.headers,
        )
        assert response.status_code == 201
    worker = network["worker"]
    code = await new_case(client, worker)
    d = (await request_disbursement(client, worker, fund_id, code, amount_cents=9_000)).json()
    # Nobody records the payment of their own request: an approver records it.
    approver = network["approver"]
    paid = await client.post(
        f"/api/v1/disbursements/{d['id']}/pay", json={"method": "manual"}, headers=approver.headers
    )
    assert paid.status_code == 200


async def test_changing_one_stored_amount_is_caught_and_named(
    client: AsyncTestClient, network: Network, fund_id: str, engine
) -> None:
    await _history(client, network, fund_id)
    auditor = network["auditor"]
    before = (await client.get(f"/api/v1/funds/{fund_id}/audit", headers=auditor.headers)).json()
    assert before["ok"] is True and before["entries"] == 5 and before["audit_events"] >= 6
    journal = (await client.get(f"/api/v1/funds/{fund_id}/journal", headers=auditor.headers)).json()
    target = next(e for e in journal if e["seq"] == 3)
    async with engine.begin() as conn:
        # Both lines, so the entry still balances: only the hash chain can tell.
        await conn.execute(
            text("UPDATE ledger_journal_line SET amount_cents = 300 WHERE entry_id = :entry"), {"entry": target["id"]}
        )
        await conn.execute(
            text(
                "UPDATE ledger_journal_entry SET total_debits_cents = 300, total_credits_cents = 300 WHERE id = :entry"
            ),
            {"entry": target["id"]},
        )
    after = (await client.get(f"/api/v1/funds/{fund_id}/audit", headers=auditor.headers)).json()
    assert after["ok"] is False
    assert after["first_bad_entry"] == target["id"]
    assert after["problem"] == "hash"


async def test_a_lone_line_change_removed_entry_or_edited_event_is_caught(
    client: AsyncTestClient, network: Network, fund_id: str, engine, sessionmaker: async_sessionmaker
) -> None:
    await _history(client, network, fund_id)
    auditor = network["auditor"]
    journal = (await client.get(f"/api/v1/funds/{fund_id}/journal", headers=auditor.headers)).json()
    second = next(e for e in journal if e["seq"] == 2)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE ledger_journal_line SET amount_cents = amount_cents + 1 WHERE entry_id = :e AND position = 0"),
            {"e": second["id"]},
        )
    async with sessionmaker() as session:
        result = await verify_fund(session, fund_id)
    assert not result.ok and result.journal.first_bad_id == second["id"] and result.journal.problem == "totals"
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE ledger_journal_line SET amount_cents = amount_cents - 1 WHERE entry_id = :e AND position = 0"),
            {"e": second["id"]},
        )
        await conn.execute(text("UPDATE ledger_audit_event SET actor_user_id = 'someone-else' WHERE seq = 2"))
    async with sessionmaker() as session:
        result = await verify_fund(session, fund_id)
    assert result.journal.ok and not result.events.ok and result.events.problem == "hash"
    last = max(journal, key=lambda e: e["seq"])
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM ledger_payment"))
        await conn.execute(text("DELETE FROM ledger_journal_line WHERE entry_id = :e"), {"e": last["id"]})
        await conn.execute(text("DELETE FROM ledger_journal_entry WHERE id = :e"), {"e": last["id"]})
    async with sessionmaker() as session:
        result = await verify_fund(session, fund_id)
    assert not result.journal.ok and result.journal.problem == "head"


async def test_cli_verify_exits_non_zero_on_a_broken_chain(
    client: AsyncTestClient, network: Network, fund_id: str, engine, database_url: str, monkeypatch
) -> None:
    from exchange.cli import main

    await _history(client, network, fund_id)
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str):
        # The CLI runs its own event loop; give it a thread so it does not meet the test's loop.
        return runner.invoke(main, ["ledger", "verify", *args])

    import asyncio

    good = await asyncio.to_thread(run, "--fund", fund_id)
    assert good.exit_code == 0, good.output
    assert "ok" in good.output
    journal = (await client.get(f"/api/v1/funds/{fund_id}/journal", headers=network["auditor"].headers)).json()
    target = next(e for e in journal if e["seq"] == 4)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE ledger_journal_entry SET memo = 'nothing to see' WHERE id = :e"), {"e": target["id"]}
        )
    bad = await asyncio.to_thread(run)
    assert bad.exit_code == 1
    assert target["id"] in bad.output
