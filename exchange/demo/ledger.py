"""Demo history of the emergency fund, posted through the ledger's own functions so balances and hashes hold."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ledger import disbursements, journal, payments
from ledger.cases import create_case
from ledger.disbursements import Requester
from ledger.rules import Approver
from ledger.timeutil import utcnow


async def seed_ledger(session: AsyncSession, net: object) -> None:
    users = net.users  # type: ignore[attr-defined]
    admin, worker, dual = users["admin"], users["caseworker"], users["dual"]
    approver, approver2 = users["approver"], users["approver2"]
    start = utcnow() - timedelta(days=40)
    fund = await journal.create_fund(session, name="Emergency Fund", currency="CAD", now=start)
    await journal.deposit(
        session,
        fund.id,
        amount_cents=2_500_000,
        source="grant",
        note="Provincial grant",
        actor_user_id=admin.id,
        now=start,
    )
    cases = [
        await create_case(session, lead_org_id=worker.organisation_id, created_by_user_id=worker.id) for _ in range(4)
    ]

    def as_requester(user: object) -> Requester:
        return Requester(user.id, user.organisation_id, user.lead_worker)  # type: ignore[attr-defined]

    def who(user: object) -> Approver:
        return Approver(user.id, user.organisation_id)  # type: ignore[attr-defined]

    # (day, requester, case, category, cents, nights, payee, approvers, paid cents or None, reject reason)
    plan = [
        (1, worker, 0, "calling_card", 2_500, None, "Prepaid phone card", [], 2_500, None),
        (2, worker, 0, "travel_local", 1_275, None, "STM bus tickets", [], 1_275, None),
        (3, worker, 0, "hotel", 48_000, 3, "Partner hotel", [approver], 46_500, None),
        (6, dual, 1, "basic_needs", 8_900, None, "Clothing and hygiene kit", [], 8_900, None),
        (
            9,
            worker,
            1,
            "travel_interprovincial",
            182_000,
            None,
            "VIA Rail Montréal-Halifax",
            [approver, approver2],
            179_850,
            None,
        ),
        (12, worker, 2, "other", 60_000, None, "Document replacement fees", [], None, "Covered by the legal clinic"),
        (15, worker, 2, "calling_card", 2_000, None, "Prepaid phone card", [], 2_000, None),
        (20, dual, 3, "hotel", 32_000, 2, "Partner hotel", [approver], 32_000, None),
        (27, worker, 3, "travel_local", 3_500, None, "Taxi to the shelter", [], 3_500, None),
        (33, worker, 1, "basic_needs", 12_000, None, "Groceries", [], None, None),
        (36, dual, 2, "travel_interprovincial", 41_000, None, "Bus Montréal-Toronto", [], None, None),
    ]
    for day, requester, case_index, category, cents, nights, payee, approvers, paid, reason in plan:
        when = start + timedelta(days=day, hours=10)
        result = await disbursements.request_disbursement(
            session,
            fund_id=fund.id,
            case_code=cases[case_index].code,
            category=category,
            amount_cents=cents,
            currency="CAD",
            payee=payee,
            nights=nights,
            requester=as_requester(requester),
            now=when,
        )
        d = result.disbursement
        for hour, approving in enumerate(approvers, start=1):
            await disbursements.approve(session, d.id, approver=who(approving), now=when + timedelta(hours=hour))
        if reason:
            await disbursements.reject(
                session, d.id, approver=who(approver), reason=reason, now=when + timedelta(hours=2)
            )
        if paid is not None:
            await payments.post_payment(
                session, d.id, paid, "manual", "demo", actor_user_id=approver.id, now=when + timedelta(hours=5)
            )
    await journal.deposit(
        session,
        fund.id,
        amount_cents=150_000,
        source="donation",
        note="Community fundraiser",
        actor_user_id=admin.id,
        now=start + timedelta(days=38),
    )
