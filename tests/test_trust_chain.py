"""Issue 9, points 10 and 11: one admin cannot drain a fund alone, and the chain cannot be rewritten.

- a saved rule set waits for a second person (another admin, or a fund approver of another organisation);
  the settings' ceilings bound every rule set; nobody records the payment of their own request; every admin
  action goes into a hash-chained audit;
- signed checkpoints (Ed25519) anchor every chain outside the database: an old payment multiplied by 10, with
  every later hash recomputed, fails `refuge ledger verify`, and so does any posting whose audit event says
  another amount; the journal CSV carries each entry's hash and previous hash, enough to recompute them.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from exchange.fund.anchor import checkpoint_now, sweep_checkpoints
from exchange.settings import Settings
from ledger.anchor_models import NETWORK_CHAIN, Checkpoint, NetworkEvent
from ledger.chain import GENESIS, entry_hash, event_hash
from ledger.checkpoints import checkpoint_line, fund_chain, generate_keys, sign, write_checkpoints
from ledger.errors import Forbidden, Invalid
from ledger.models import Account, AuditEvent, Fund, JournalEntry, JournalLine
from ledger.rules import DEFAULT_RULES, rules_to_document
from ledger.rulesets import RuleCeilings, approve_rule_set, current_rule_set, save_rule_set
from ledger.verify import verify_fund, verify_network
from tests.conftest import Network, login_page_session
from tests.test_ledger_support import (
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)

PRIVATE, PUBLIC = generate_keys()


def _csrf(client: AsyncTestClient) -> str:
    return client.cookies.get("csrftoken") or ""


def _settings(**kw: Any) -> Settings:
    return Settings(ledger_signing_key=PRIVATE, ledger_public_key=PUBLIC, **kw)


# --- point 10: separation of duties ------------------------------------------------------------------------


async def test_a_saved_rule_set_waits_for_a_second_person_of_another_organisation(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    # The admin raises the fast path to 400.00 and lets hotels through it; nothing changes until approved.
    document = rules_to_document(DEFAULT_RULES)
    document["fast_path"]["amount_cents_max"] = 40_000
    await login_page_session(client, "admin")
    saved = await client.post(
        "/ledger/rules",
        data={"fund_id": fund_id, "document": json.dumps(document)},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and "saved=2" in saved.headers["location"]
    worker = network["worker"]
    big_card = await request_disbursement(
        client, worker, fund_id, await new_case(client, worker), category="calling_card", amount_cents=30_000
    )
    assert big_card.status_code == 201
    assert (big_card.json()["rule"], big_card.json()["rule_set_version"]) == ("single_approval", 1)
    page = await client.get(f"/ledger/rules?fund={fund_id}")
    assert 'id="pending-rules"' in page.text and "Version 2 waits for approval" in page.text
    assert "/ledger/rules/approve" not in page.text  # its author may not approve it
    own = await client.post(
        "/ledger/rules/approve",
        data={"fund_id": fund_id, "version": "2"},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert own.status_code == 403 and "not its author" in own.text
    await client.post("/logout", headers={"x-csrftoken": _csrf(client)})
    # An approver of the admin's own organisation (the coalition) may not either.
    await login_page_session(client, "approver")
    same_org = await client.post(
        "/ledger/rules/approve",
        data={"fund_id": fund_id, "version": "2"},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert same_org.status_code == 403 and "another organisation than the author" in same_org.text
    await client.post("/logout", headers={"x-csrftoken": _csrf(client)})
    # An approver of another organisation sees the pending version, and who may approve it, and approves it.
    await login_page_session(client, "approver_community")
    page = await client.get(f"/ledger/rules?fund={fund_id}")
    assert page.status_code == 200 and "/ledger/rules/approve" in page.text
    assert "a fund approver of another organisation" in page.text
    approved = await client.post(
        "/ledger/rules/approve",
        data={"fund_id": fund_id, "version": "2"},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert approved.status_code == 303 and "approved=2" in approved.headers["location"]
    again = await request_disbursement(
        client, worker, fund_id, await new_case(client, worker), category="calling_card", amount_cents=30_000
    )
    assert (again.json()["rule"], again.json()["rule_set_version"]) == ("fast_path", 2)
    twice = await client.post(
        "/ledger/rules/approve",
        data={"fund_id": fund_id, "version": "2"},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert twice.status_code == 409


async def test_another_admin_may_approve_and_a_newer_save_supersedes_a_pending_one(
    sessionmaker: async_sessionmaker, network: Network, fund_id: str
) -> None:
    admin = network["admin"].user
    document = rules_to_document(DEFAULT_RULES)
    async with sessionmaker() as session:
        await save_rule_set(session, fund_id, document, actor_user_id=admin.id, actor_org_id=admin.organisation_id)
        await save_rule_set(session, fund_id, document, actor_user_id=admin.id, actor_org_id=admin.organisation_id)
        try:
            await approve_rule_set(
                session,
                fund_id,
                2,
                approver_user_id="other-admin",
                approver_org_id=admin.organisation_id,
                approver_is_admin=True,
            )
            raise AssertionError("an older pending version was approved")
        except Exception as exc:
            assert getattr(exc, "code", None) == "rule_set_superseded"
        version = await approve_rule_set(
            session,
            fund_id,
            3,
            approver_user_id="other-admin",
            approver_org_id=admin.organisation_id,
            approver_is_admin=True,
        )
        assert version.approved_by_user_id == "other-admin"
        assert (await current_rule_set(session, fund_id))[0].version == 3
        events = (await session.execute(select(AuditEvent.action).where(AuditEvent.fund_id == fund_id))).scalars().all()
        assert list(events).count("rule_set") == 2 and "rule_set_approved" in events


async def test_rule_ceilings_from_the_settings_cannot_be_exceeded(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    document = rules_to_document(DEFAULT_RULES)
    document["fast_path"]["amount_cents_max"] = 10**12
    document["single_approval"]["amount_cents_max"] = 10**12
    await login_page_session(client, "admin")
    refused = await client.post(
        "/ledger/rules",
        data={"fund_id": fund_id, "document": json.dumps(document)},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert refused.status_code == 422 and "fast_path.amount_cents_max cannot exceed 50000" in refused.text
    preview = await client.post(
        "/ledger/rules/preview",
        data={"fund_id": fund_id, "document": json.dumps(document)},
        headers={"HX-Request": "true", "x-csrftoken": _csrf(client)},
    )
    assert 'role="alert"' in preview.text and "cannot exceed" in preview.text
    # The ceilings are checked again at approval: a version saved under higher ceilings stays out of force.
    admin, second = network["admin"].user, network["approver_community"].user
    document["fast_path"]["amount_cents_max"] = 40_000
    document["single_approval"]["amount_cents_max"] = 150_000
    async with sessionmaker() as session:
        await save_rule_set(session, fund_id, document, actor_user_id=admin.id, actor_org_id=admin.organisation_id)
        try:
            await approve_rule_set(
                session,
                fund_id,
                2,
                approver_user_id=second.id,
                approver_org_id=second.organisation_id,
                approver_is_admin=False,
                ceilings=RuleCeilings(fast_path_cents_max=25_000, single_approval_cents_max=150_000),
            )
            raise AssertionError("a rule set above the ceilings was approved")
        except Invalid as exc:
            assert exc.code == "rule_above_ceiling"
        assert (await current_rule_set(session, fund_id))[0].version == 1


async def test_nobody_records_the_payment_of_their_own_request(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    # `dual` is a lead case worker and a fund approver: the fast path approves its request at once.
    dual = network["dual"]
    d = (await request_disbursement(client, dual, fund_id, await new_case(client, dual), amount_cents=9_000)).json()
    assert d["status"] == "approved"
    own = await client.post(f"/api/v1/disbursements/{d['id']}/pay", json={"method": "manual"}, headers=dual.headers)
    assert own.status_code == 403 and own.json()["error"] == "own_request"
    other = await client.post(
        f"/api/v1/disbursements/{d['id']}/pay", json={"method": "manual"}, headers=network["approver"].headers
    )
    assert other.status_code == 200 and other.json()["status"] == "paid"


async def test_every_admin_action_goes_into_the_hash_chained_network_audit(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker, engine: Any
) -> None:
    await login_page_session(client, "admin")
    headers = {"x-csrftoken": _csrf(client)}
    coalition = network.orgs["coalition"].id
    created = await client.post(
        "/admin/users",
        data={
            "username": "new_lead",
            "password": "a long enough password",
            "organisation_id": coalition,
            "roles": "case_worker",
            "lead_worker": "true",
        },
        headers=headers,
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    target = network["worker_plain"].id
    roles = await client.post(
        f"/admin/users/{target}/roles", data={"roles": "fund_approver"}, headers=headers, follow_redirects=False
    )
    assert roles.status_code == 303
    disabled = await client.post(f"/admin/users/{target}/disable", headers=headers, follow_redirects=False)
    assert disabled.status_code == 303
    org = await client.post(
        "/admin/organisations", data={"name": "New shelter", "kind": "shelter"}, headers=headers, follow_redirects=False
    )
    assert org.status_code == 303
    # A standing agreement (a shelter's, reaching the address of its partner) is in the same chain.
    agreement = await client.post(
        "/api/v1/agreements",
        json={
            "pool_id": network.pools["a"].id,
            "beds": 1,
            "scope": "police",
            "partner_org_id": network.orgs["police"].id,
        },
        headers=network["shelter_a"].headers,
    )
    assert agreement.status_code == 201, agreement.text
    async with sessionmaker() as session:
        events = list((await session.execute(select(NetworkEvent).order_by(NetworkEvent.seq))).scalars())
        assert [e.action for e in events] == [
            "user_added",
            "user_roles",
            "user_disabled",
            "organisation_added",
            "agreement_created",
        ]
        assert events[-1].actor_user_id == network["shelter_a"].id
        events = events[:-1]
        assert all(e.actor_user_id == network["admin"].id for e in events)
        assert events[1].detail["user"] == target and events[1].detail["roles"] == ["fund_approver"]
        assert (await verify_network(session)).ok
    # Erasing the trace of the role change is seen.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE ledger_network_event SET detail = '{}' WHERE seq = 2"))
    async with sessionmaker() as session:
        result = await verify_network(session)
    assert not result.ok and result.events.problem == "hash" and result.events.first_bad_id == events[1].id


# --- point 11: the chain anchored outside the database -------------------------------------------------------


async def _history(client: AsyncTestClient, network: Network, fund_id: str) -> str:
    """Deposits, a paid request (the payment to falsify), then more entries after it. The payment's id."""
    admin, worker, approver = network["admin"], network["worker"], network["approver"]
    d = (await request_disbursement(client, worker, fund_id, await new_case(client, worker), amount_cents=9_000)).json()
    paid = await client.post(
        f"/api/v1/disbursements/{d['id']}/pay", json={"method": "manual"}, headers=approver.headers
    )
    assert paid.status_code == 200, paid.text
    for amount in (20_000, 30_000):
        response = await client.post(
            f"/api/v1/funds/{fund_id}/deposits",
            json={"amount_cents": amount, "source": "donation"},
            headers=admin.headers,
        )
        assert response.status_code == 201
    return paid.json()["payment"]["entry_id"]


async def _rewrite_journal(sessionmaker: async_sessionmaker, fund_id: str, entry_id: str, factor: int) -> None:
    """What an attacker with the database and this code does: multiply the entry's amounts, then recompute its
    hash and every later one, and the fund's head, so the chain is whole again."""
    async with sessionmaker() as session:
        fund = await session.get(Fund, fund_id)
        assert fund is not None
        codes = dict((await session.execute(select(Account.id, Account.code).where(Account.fund_id == fund_id))).all())
        target = await session.get(JournalEntry, entry_id)
        assert target is not None
        for line in (await session.execute(select(JournalLine).where(JournalLine.entry_id == entry_id))).scalars():
            line.amount_cents *= factor
        target.total_debits_cents *= factor
        target.total_credits_cents *= factor
        await session.flush()
        prev = GENESIS if target.seq == 1 else None
        entries = (
            (
                await session.execute(
                    select(JournalEntry).where(JournalEntry.fund_id == fund_id).order_by(JournalEntry.seq)
                )
            )
            .scalars()
            .all()
        )
        for entry in entries:
            if entry.seq < target.seq:
                prev = entry.hash
                continue
            lines = (
                (
                    await session.execute(
                        select(JournalLine).where(JournalLine.entry_id == entry.id).order_by(JournalLine.position)
                    )
                )
                .scalars()
                .all()
            )
            entry.prev_hash = prev or GENESIS
            entry.hash = entry_hash(
                entry, fund.currency, [(codes[li.account_id], li.side, li.amount_cents) for li in lines]
            )
            prev = entry.hash
        fund.head_hash = prev or GENESIS
        await session.commit()


async def _rewrite_audit(sessionmaker: async_sessionmaker, fund_id: str, entry_id: str, factor: int) -> None:
    """The same for the audit chain: the payment's event now says the multiplied amount, hashes recomputed."""
    async with sessionmaker() as session:
        fund = await session.get(Fund, fund_id)
        assert fund is not None
        events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.fund_id == fund_id).order_by(AuditEvent.seq)))
            .scalars()
            .all()
        )
        prev = GENESIS
        for event in events:
            if event.detail.get("entry") == entry_id:
                event.detail = {**event.detail, "amount_cents": event.detail["amount_cents"] * factor}
            event.prev_hash = prev
            event.hash = event_hash(event)
            prev = event.hash
        fund.audit_head_hash = prev
        await session.commit()


async def test_an_old_payment_times_ten_with_every_later_hash_recomputed_fails_verify(
    client: AsyncTestClient,
    network: Network,
    fund_id: str,
    sessionmaker: async_sessionmaker,
    database_url: str,
    monkeypatch: Any,
) -> None:
    from exchange.cli import main

    entry_id = await _history(client, network, fund_id)
    async with sessionmaker() as session:
        assert await checkpoint_now(session, _settings())  # the scheduled checkpoint, with the private key
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_PUBLIC_KEY", PUBLIC)  # verify has the public key only
    monkeypatch.delenv("LEDGER_SIGNING_KEY", raising=False)

    def verify() -> Any:
        return CliRunner().invoke(main, ["ledger", "verify", "--fund", fund_id])

    good = await asyncio.to_thread(verify)
    assert good.exit_code == 0, good.output
    assert "checkpoints: ok" in good.output

    await _rewrite_journal(sessionmaker, fund_id, entry_id, 10)
    async with sessionmaker() as session:
        result = await verify_fund(session, fund_id)  # no key at all: the audit event still says 9,000
    assert not result.ok and result.journal.problem == "audit_mismatch" and result.journal.first_bad_id == entry_id
    bad = await asyncio.to_thread(verify)
    assert bad.exit_code == 1 and entry_id in bad.output and "audit_mismatch" in bad.output

    # The attacker rewrites the audit chain too: only the signed checkpoint can tell now.
    await _rewrite_audit(sessionmaker, fund_id, entry_id, 10)
    async with sessionmaker() as session:
        unanchored = await verify_fund(session, fund_id)
        anchored = await verify_fund(session, fund_id, public_key=PUBLIC)
    assert unanchored.journal.ok and unanchored.events.ok  # internally whole again
    assert not anchored.ok and anchored.anchor is not None and anchored.anchor.problem == "journal_head"
    bad = await asyncio.to_thread(verify)
    assert bad.exit_code == 1 and "checkpoints: BROKEN (journal_head)" in bad.output


async def test_a_checkpoint_kept_outside_the_database_survives_deleting_the_rows(
    client: AsyncTestClient,
    network: Network,
    fund_id: str,
    sessionmaker: async_sessionmaker,
    tmp_path: Path,
    engine: Any,
) -> None:
    entry_id = await _history(client, network, fund_id)
    anchor_file = tmp_path / "checkpoints.jsonl"
    async with sessionmaker() as session:
        written = await checkpoint_now(session, _settings(ledger_checkpoint_file=str(anchor_file)))
    assert {cp.chain for cp in written} == {fund_chain(fund_id), NETWORK_CHAIN}
    assert anchor_file.read_text().count("\n") == len(written)
    await _rewrite_journal(sessionmaker, fund_id, entry_id, 10)
    await _rewrite_audit(sessionmaker, fund_id, entry_id, 10)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM ledger_checkpoint"))
    from ledger.checkpoints import parse_checkpoint_lines

    async with sessionmaker() as session:
        no_rows = await verify_fund(session, fund_id, public_key=PUBLIC)
        from_file = await verify_fund(
            session,
            fund_id,
            public_key=PUBLIC,
            checkpoints=parse_checkpoint_lines(anchor_file.read_text().splitlines()),
        )
    assert no_rows.anchor is not None and no_rows.anchor.problem == "no_checkpoint" and not no_rows.ok
    assert from_file.anchor is not None and from_file.anchor.problem == "journal_head" and not from_file.ok


async def test_a_checkpoint_forged_with_another_key_is_refused(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    await _history(client, network, fund_id)
    async with sessionmaker() as session:
        await checkpoint_now(session, _settings())
        fund = await session.get(Fund, fund_id)
        assert fund is not None
        other_private, _ = generate_keys()
        forged = sign(
            Checkpoint(
                chain=fund_chain(fund_id),
                journal_count=fund.entry_count,
                journal_head="0" * 64,
                audit_count=fund.audit_count + 1,
                audit_head="0" * 64,
                signed_at=datetime.now(UTC),
                public_key="",
                signature="",
            ),
            other_private,
        )
        forged.public_key = PUBLIC  # claims the real key, signed with another
        session.add(forged)
        await session.commit()
        result = await verify_fund(session, fund_id, public_key=PUBLIC)
    assert result.anchor is not None and result.anchor.problem == "signature" and not result.ok


async def test_checkpoints_are_written_once_however_many_processes_sign(
    sessionmaker: async_sessionmaker, network: Network, fund_id: str
) -> None:
    async def one() -> int:
        async with sessionmaker() as session:
            return len(await write_checkpoints(session, PRIVATE))

    written = await asyncio.gather(*(one() for _ in range(4)))
    async with sessionmaker() as session:
        rows = (await session.execute(select(Checkpoint.chain, func.count()).group_by(Checkpoint.chain))).all()
        assert sum(written) == 2 and sorted(rows) == sorted([(fund_chain(fund_id), 1), (NETWORK_CHAIN, 1)])
        # Nothing moved: nothing more to sign.
        assert await write_checkpoints(session, PRIVATE) == []
        assert (await verify_fund(session, fund_id, public_key=PUBLIC)).ok


async def test_without_a_signing_key_the_sweep_step_does_nothing_and_the_app_runs(
    app: Litestar, sessionmaker: async_sessionmaker, fund_id: str, client: AsyncTestClient, network: Network
) -> None:
    assert not app.state.settings.ledger_signing_key
    await sweep_checkpoints(app)
    await sweep_checkpoints(app)
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Checkpoint))).scalar_one() == 0
        assert await checkpoint_now(session, Settings()) == []
    health = await client.get(f"/api/v1/funds/{fund_id}", headers=network["approver"].headers)
    assert health.status_code == 200


async def test_the_journal_csv_carries_hashes_an_auditor_can_recompute(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    await _history(client, network, fund_id)
    await login_page_session(client, "auditor")
    response = await client.get(f"/ledger/journal.csv?fund={fund_id}")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {"hash", "prev_hash", "disbursement_id"} <= set(rows[0])
    entries: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        entries.setdefault(row["entry_id"], []).append(row)
    previous = ""
    for lines in sorted(entries.values(), key=lambda ls: int(ls[0]["seq"])):
        first = lines[0]
        assert first["prev_hash"] == previous
        memo = first["memo"][1:] if first["memo"][:2] in ("'=", "'+", "'-", "'@") else first["memo"]
        debits = sum(int(li["amount_cents"]) for li in lines if li["side"] == "debit")
        # The recipe of ledger/chain.py, from the CSV alone (and the fund's id, in the file name).
        document = {
            "id": first["entry_id"],
            "fund": fund_id,
            "seq": int(first["seq"]),
            "kind": first["kind"],
            "date": datetime.fromisoformat(first["posted_at"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "memo": memo,
            "disbursement": first["disbursement_id"] or None,
            "currency": first["currency"],
            "debits": debits,
            "credits": sum(int(li["amount_cents"]) for li in lines if li["side"] == "credit"),
            "lines": [[li["account"], li["side"], int(li["amount_cents"])] for li in lines],
            "prev": first["prev_hash"],
        }
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert hashlib.sha256(canonical).hexdigest() == first["hash"]
        previous = first["hash"]
    assert len(entries) >= 4


def test_a_checkpoint_line_round_trips() -> None:
    cp = sign(
        Checkpoint(
            chain="fund:x",
            journal_count=3,
            journal_head="a" * 64,
            audit_count=4,
            audit_head="b" * 64,
            signed_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            public_key="",
            signature="",
        ),
        PRIVATE,
    )
    from ledger.checkpoints import parse_checkpoint_lines, signature_holds

    (back,) = parse_checkpoint_lines([checkpoint_line(cp)])
    assert signature_holds(back, PUBLIC) and not signature_holds(back, generate_keys()[1])
    assert isinstance(Forbidden("x", "y"), Exception)


async def test_refuge_ledger_checkpoint_signs_on_demand_and_needs_the_key(
    network: Network, fund_id: str, database_url: str, monkeypatch: Any, sessionmaker: async_sessionmaker
) -> None:
    from exchange.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("LEDGER_SIGNING_KEY", raising=False)
    refused = await asyncio.to_thread(CliRunner().invoke, main, ["ledger", "checkpoint"])
    assert refused.exit_code == 1
    monkeypatch.setenv("LEDGER_SIGNING_KEY", PRIVATE)
    done = await asyncio.to_thread(CliRunner().invoke, main, ["ledger", "checkpoint"])
    assert done.exit_code == 0, done.output
    chains = {json.loads(line)["chain"] for line in done.output.splitlines()}
    assert chains == {fund_chain(fund_id), NETWORK_CHAIN}
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Checkpoint))).scalar_one() == 2
